package tasker_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/sqlite"
)

// TestSQLiteSoak drives the SQLite store from every side at once: many
// goroutines submit while steps complete, operators cancel some tasks while
// they run and retry the ones that failed, and readers list and read tasks
// throughout. No call may fail (in particular, never with "database is
// locked"), and every task must end where its story says.
func TestSQLiteSoak(t *testing.T) {
	submitters, perSubmitter := 20, 25
	if testing.Short() {
		submitters, perSubmitter = 8, 10
	}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "soak.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sk := &soak{failedOnce: map[string]bool{}, errs: make(chan error, submitters*perSubmitter*4)}
	sk.eng = startEngine(t, st, sk.handlers(), mustParse(t, twoSteps))
	ids := sk.submit(submitters, perSubmitter)
	counts := sk.finish(t, ids)
	close(sk.errs)
	for err := range sk.errs {
		if strings.Contains(err.Error(), "locked") || strings.Contains(err.Error(), "BUSY") {
			t.Errorf("SQLite contention reached a caller: %v", err)
		} else {
			t.Error(err)
		}
	}
	total := submitters * perSubmitter
	if counts[tasker.TaskComplete]+counts[tasker.TaskCancelled] != total || counts[tasker.TaskComplete] == 0 {
		t.Errorf("outcomes %v, want %d tasks complete or cancelled", counts, total)
	}
	t.Logf("%d tasks: %v, %d failed once and were retried", total, counts, len(sk.failedOnce))
}

// soak is TestSQLiteSoak's engine and what its handlers and callers saw.
type soak struct {
	eng        *tasker.Engine
	mu         sync.Mutex
	failedOnce map[string]bool // tasks whose "first" step failed for good once
	errs       chan error
}

func (sk *soak) handlers() map[string]tasker.StepHandler {
	return map[string]tasker.StepHandler{
		"test.first": tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
			var n int
			sc.Input("n", &n)
			sk.mu.Lock()
			defer sk.mu.Unlock()
			if n%5 == 0 && !sk.failedOnce[sc.TaskID()] { // every fifth task fails once, for good
				sk.failedOnce[sc.TaskID()] = true
				return nil, &tasker.StepError{Message: "declined", Type: tasker.ErrorPermanent}
			}
			return n, nil
		}),
		"test.second": echoStep("second"),
	}
}

// submit submits from many goroutines at once, cancelling some tasks and
// listing as it goes, and returns the tasks' IDs and numbers.
func (sk *soak) submit(submitters, perSubmitter int) chan [2]any {
	ctx := context.Background()
	var wg sync.WaitGroup
	ids := make(chan [2]any, submitters*perSubmitter)
	for g := range submitters {
		wg.Go(func() {
			for k := range perSubmitter {
				n := g*perSubmitter + k
				id, err := sk.eng.Submit(ctx, tasker.SubmitRequest{Namespace: "test", Name: "two_steps", Context: map[string]int{"n": n}})
				if err != nil {
					sk.errs <- err
					return
				}
				if n%7 == 3 { // cancel some while they run
					if err := sk.eng.Cancel(ctx, id, tasker.Action{By: "soak"}); err != nil && !errors.Is(err, tasker.ErrIllegalTransition) {
						sk.errs <- err
					}
				}
				if _, err := sk.eng.List(ctx, tasker.TaskFilter{Namespace: "test", Limit: 5}); err != nil {
					sk.errs <- err
				}
				ids <- [2]any{id, n}
			}
		})
	}
	wg.Wait()
	close(ids)
	return ids
}

// finish waits for every task, retries the failed ones, and counts how
// they ended; each must end complete or cancelled.
func (sk *soak) finish(t *testing.T, ids chan [2]any) map[tasker.TaskState]int {
	ctx := context.Background()
	counts := map[tasker.TaskState]int{}
	for pair := range ids {
		id := pair[0].(string)
		task, err := sk.eng.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if task.State == tasker.TaskFailed {
			if err := sk.eng.Retry(ctx, id, tasker.Action{By: "soak"}); err != nil {
				t.Fatalf("Retry %s: %v", id, err)
			}
			if task, err = sk.eng.Wait(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		counts[task.State]++
		if task.State != tasker.TaskComplete && task.State != tasker.TaskCancelled {
			t.Errorf("task %s (n=%d) ended %s", id, pair[1], stateOf(task, nil))
		}
	}
	return counts
}
