package tasker_test

// A sub-task that retention deleted after it ended, before its parent step
// read its outcome: Subtask must not start a second one (ErrSubtaskGone).

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/sqlite"
)

const (
	goneParentYAML = `
name: parent
namespace_name: gone
version: "1.0.0"
steps:
  - name: delegate
    handler: {callable: gone.delegate}
    retry: {max_attempts: 3, backoff: constant, backoff_base_ms: 1}
  - {name: after, dependencies: [delegate], handler: {callable: gone.after}}
`
	goneChildYAML = `
name: child
namespace_name: gone
version: "1.0.0"
steps:
  - {name: work, handler: {callable: gone.work}, retry: {max_attempts: 1}}
`
)

// goneWorld runs the two templates: the parent's delegate step starts a
// child with Subtask and returns its ID once it ended. before runs at the
// start of each of the delegate handler's calls (numbered from 1 across
// attempts and engines), then with the child Subtask returned; either may
// fail the call.
type goneWorld struct {
	before func(ctx context.Context, sc *tasker.StepContext, call int) error
	then   func(ctx context.Context, sc *tasker.StepContext, child *tasker.Task) error

	mu       sync.Mutex
	calls    int
	children []string // the ID of every child whose step ran, once per run
	afters   int      // runs of the parent's last step
	errs     []error  // what Subtask returned but ErrSubtaskPending
}

func (w *goneWorld) handlers() map[string]tasker.StepHandler {
	return map[string]tasker.StepHandler{
		"gone.delegate": tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
			w.mu.Lock()
			w.calls++
			call := w.calls
			w.mu.Unlock()
			if w.before != nil {
				if err := w.before(ctx, sc, call); err != nil {
					return nil, err
				}
			}
			child, err := sc.Subtask(ctx, tasker.SubmitRequest{Namespace: "gone", Name: "child"})
			if errors.Is(err, tasker.ErrSubtaskPending) {
				return nil, err
			}
			if err != nil {
				w.mu.Lock()
				w.errs = append(w.errs, err)
				w.mu.Unlock()
				return nil, err
			}
			if w.then != nil {
				if err := w.then(ctx, sc, child); err != nil {
					return nil, err
				}
			}
			return child.ID, nil
		}),
		"gone.after": tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) {
			w.mu.Lock()
			w.afters++
			w.mu.Unlock()
			return "after", nil
		}),
		"gone.work": tasker.HandlerFunc(func(_ context.Context, sc *tasker.StepContext) (any, error) {
			w.mu.Lock()
			w.children = append(w.children, sc.TaskID())
			w.mu.Unlock()
			return "worked", nil
		}),
	}
}

// purgeChild deletes, as retention would, the complete tasks of st: the
// child only, as the parent has not ended.
func purgeChild(ctx context.Context, t *testing.T, st store.Store) error {
	n, err := st.(store.Purger).PurgeTasks(ctx, store.PurgeFilter{States: []string{string(tasker.TaskComplete)}})
	if err == nil && n != 1 {
		err = fmt.Errorf("purged %d tasks, want the child alone", n)
	}
	if err != nil {
		t.Errorf("purge the child: %v", err)
	}
	return err
}

// checkGone checks the end of parent task id, whose delegate step read its
// child after retention deleted it: the step failed for good at attempt
// attempts, with ErrSubtaskGone, no second child was started, and the step
// after it never ran.
func (w *goneWorld) checkGone(t *testing.T, eng *tasker.Engine, id string, attempts int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	task, err := eng.Wait(ctx, id)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.children) != 1 {
		t.Fatalf("children run: %v, want exactly one (the sub-workflow ran %d times)", w.children, len(w.children))
	}
	child := w.children[0]
	if task.State != tasker.TaskFailed {
		t.Errorf("parent: %s, want error", stateOf(task, nil))
	}
	d := step(t, task, "delegate")
	if d.State != tasker.StepFailed || d.Attempts != attempts || d.Subtask != child {
		t.Errorf("delegate: %s after %d attempts, linked to %q; want failed after %d (of 3), linked to %s",
			d.State, d.Attempts, d.Subtask, attempts, child)
	}
	if f := d.LastError; f == nil || f.Code != tasker.CodeSubtaskGone || f.Retryable || f.Type != tasker.ErrorPermanent ||
		!strings.Contains(f.Message, child) || !strings.Contains(f.Message, "delegate") || !strings.Contains(f.Message, "deleted") {
		t.Errorf("delegate's last error %+v, want a permanent %s naming the step and %s", f, tasker.CodeSubtaskGone, child)
	}
	if len(w.errs) != 1 {
		t.Fatalf("Subtask's errors %v, want one", w.errs)
	}
	var se *tasker.StepError
	if err := w.errs[0]; !errors.Is(err, tasker.ErrSubtaskGone) || !errors.As(err, &se) || se.Retryable {
		t.Errorf("Subtask: %v, want a non-retryable StepError wrapping ErrSubtaskGone", err)
	}
	if w.afters != 0 {
		t.Errorf("the step after delegate ran %d times, want never", w.afters)
	}
	kids, err := eng.List(ctx, tasker.TaskFilter{Namespace: "gone", Name: "child"})
	if err != nil || len(kids) != 0 {
		t.Errorf("children stored: %d (%v), want none: the one purged, no other", len(kids), err)
	}
}

// TestSubtaskGoneAfterPurge: a parent step whose child retention deleted
// once it ended fails for good when it calls Subtask again, instead of
// starting a second child: in a later attempt (it failed, retryably, once
// the child ended), or in the same attempt, woken by the child's end.
func TestSubtaskGoneAfterPurge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		world    func(t *testing.T, st store.Store) *goneWorld
		attempts int
	}{
		{"next attempt", func(t *testing.T, st store.Store) *goneWorld {
			return &goneWorld{then: func(ctx context.Context, sc *tasker.StepContext, _ *tasker.Task) error {
				if sc.Attempt() > 1 {
					return nil
				}
				if err := purgeChild(ctx, t, st); err != nil {
					return err
				}
				return errors.New("flaky: failed after its sub-task ended")
			}}
		}, 2},
		{"woken", func(t *testing.T, st store.Store) *goneWorld {
			return &goneWorld{before: func(ctx context.Context, _ *tasker.StepContext, call int) error {
				if call != 2 { // the first call started the child; the second is its end's
					return nil
				}
				return purgeChild(ctx, t, st)
			}}
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, st store.Store) {
				w := tc.world(t, st)
				eng := startEngineWith(t, st, &tasker.Config{Workers: 1, Retention: tasker.Retention{Disabled: true}},
					w.handlers(), mustParse(t, goneParentYAML), mustParse(t, goneChildYAML))
				id, err := eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "gone", Name: "parent"})
				if err != nil {
					t.Fatal(err)
				}
				w.checkGone(t, eng, id, tc.attempts)
			})
		})
	}
}

// TestSubtaskGoneAfterRestart: the engine stops after the child ended,
// before the parent step read it, and stays stopped longer than
// Retention.MaxAge; the next engine's retention deletes the child at
// Start, and the parent step, restored from the store, fails for good
// when its next attempt calls Subtask, instead of starting a second child.
func TestSubtaskGoneAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasker.db")
	st, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan string, 1)
	w := &goneWorld{then: func(ctx context.Context, _ *tasker.StepContext, child *tasker.Task) error {
		ended <- child.ID
		<-ctx.Done() // the engine stops: the attempt is interrupted
		return ctx.Err()
	}}
	first, err := tasker.New(st, &tasker.Config{Workers: 1, Retention: tasker.Retention{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	registerAll(t, first, w.handlers())
	if err := first.AddTemplates(mustParse(t, goneParentYAML), mustParse(t, goneChildYAML)); err != nil {
		t.Fatal(err)
	}
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.StopAndCancel(context.Background()) }) // stopped below, unless the test fails first
	id, err := first.Submit(context.Background(), tasker.SubmitRequest{Namespace: "gone", Name: "parent"})
	if err != nil {
		t.Fatal(err)
	}
	var child string
	select {
	case child = <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not end in 30s")
	}
	if err := first.StopAndCancel(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.Close()

	st, err = sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	proceed := make(chan struct{})
	var once sync.Once
	letProceed := func() { once.Do(func() { close(proceed) }) }
	w.then = nil
	w.before = func(ctx context.Context, _ *tasker.StepContext, _ int) error {
		select { // the child is read once retention deleted it
		case <-proceed:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	clock := &fakeClock{}
	clock.advance(tasker.DefaultRetentionMaxAge + 24*time.Hour) // stopped for 8 days
	log, purged := purgeLogger()
	second := startEngineWith(t, st, &tasker.Config{Workers: 1, Clock: clock.now, Logger: log},
		w.handlers(), mustParse(t, goneParentYAML), mustParse(t, goneChildYAML))
	t.Cleanup(letProceed) // before the engine stops
	awaitPurged(t, purged, 1)
	if _, err := second.Get(context.Background(), child); !errors.Is(err, tasker.ErrTaskNotFound) {
		t.Fatalf("child %s after the first purge: %v, want it deleted", child, err)
	}
	letProceed()
	w.checkGone(t, second, id, 2) // the interrupted attempt, then the one that read the child
}
