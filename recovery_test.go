package tasker_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
)

// crashedTask stores a two_steps task, then writes the changes a process
// would have made before dying, as if it had.
func crashedTask(t *testing.T, st store.Store, changes func(id string, now time.Time) []store.Change) string {
	t.Helper()
	id := storedBehindTheEngine(t, st, "")
	if err := st.Apply(context.Background(), changes(id, time.Now())); err != nil {
		t.Fatal(err)
	}
	return id
}

func taskStarts(id string, now time.Time) store.Change {
	return store.Change{TaskID: id, From: "pending", To: "in_progress", At: now}
}

func claimed(id, step string, attempt int, now time.Time) store.Change {
	return store.Change{TaskID: id, Step: step, From: "pending", To: "in_progress", Attempt: attempt, At: now}
}

// recoveringHandlers count the calls of first and second, and second
// returns first's result so the test can see what it read.
func recoveringHandlers(first, second *atomic.Int32) map[string]tasker.StepHandler {
	return map[string]tasker.StepHandler{
		"test.first": countCalls(echoStep("first"), first),
		"test.second": countCalls(func(_ context.Context, sc *tasker.StepContext) (any, error) {
			return sc.RawDependencyResult("first"), nil
		}, second),
	}
}

func TestRecoverPendingStepAfterCompletedOne(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		id := crashedTask(t, st, func(id string, now time.Time) []store.Change {
			done := claimed(id, "first", 1, now)
			return []store.Change{taskStarts(id, now), done, {TaskID: id, Step: "first", From: "in_progress",
				FromAttempt: 1, To: "complete", Attempt: 1, Result: json.RawMessage(`{"from":"before the crash"}`), At: now}}
		})
		var first, second atomic.Int32
		eng := startEngine(t, st, recoveringHandlers(&first, &second), mustParse(t, twoSteps))
		task, err := eng.Wait(context.Background(), id)
		if err != nil || task.State != tasker.TaskComplete {
			t.Fatalf("recovered task: %s", stateOf(task, err))
		}
		if first.Load() != 0 || second.Load() != 1 {
			t.Errorf("first ran %d times (want 0: it completed before the crash), second %d (want 1)", first.Load(), second.Load())
		}
		if got := string(step(t, task, "second").Result); got != `{"from":"before the crash"}` {
			t.Errorf("second read %s, want first's stored result", got)
		}
	})
}

func TestRecoverWaitingForRetryKeepsSchedule(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		var next time.Time
		id := crashedTask(t, st, func(id string, now time.Time) []store.Change {
			next = now.Add(300 * time.Millisecond)
			return []store.Change{taskStarts(id, now), claimed(id, "first", 1, now), {TaskID: id, Step: "first",
				From: "in_progress", FromAttempt: 1, To: "waiting_for_retry", Attempt: 1, NextAttemptAt: next,
				Error: &store.Failure{Message: "flaky", Type: "retryable_error", Retryable: true, Attempt: 1}, At: now}}
		})
		var first, second atomic.Int32
		eng := startEngine(t, st, recoveringHandlers(&first, &second), mustParse(t, twoSteps))
		task, err := eng.Wait(context.Background(), id)
		if err != nil || task.State != tasker.TaskComplete {
			t.Fatalf("recovered task: %s", stateOf(task, err))
		}
		f := step(t, task, "first")
		if f.Attempts != 2 || first.Load() != 1 {
			t.Errorf("first: %d attempts recorded, %d calls; want attempt 2, one call", f.Attempts, first.Load())
		}
		if f.StartedAt.Before(next) {
			t.Errorf("retry started at %v, before its scheduled %v", f.StartedAt, next)
		}
	})
}

func TestRecoverInProgressStepOutOfAttempts(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		// second allows the default 3 attempts: the third, cut short by the
		// crash, was its last.
		id := crashedTask(t, st, func(id string, now time.Time) []store.Change {
			return []store.Change{taskStarts(id, now), claimed(id, "first", 1, now),
				{TaskID: id, Step: "first", From: "in_progress", FromAttempt: 1, To: "complete", Attempt: 1,
					Result: json.RawMessage(`1`), At: now},
				{TaskID: id, Step: "second", From: "pending", To: "in_progress", Attempt: 3, At: now}}
		})
		var first, second atomic.Int32
		eng := startEngine(t, st, recoveringHandlers(&first, &second), mustParse(t, twoSteps))
		task, err := eng.Wait(context.Background(), id)
		if err != nil || task.State != tasker.TaskFailed {
			t.Fatalf("recovered task: %s; want error", stateOf(task, err))
		}
		s := step(t, task, "second")
		if s.State != tasker.StepFailed || s.LastError == nil || s.LastError.Code != tasker.CodeInterrupted || second.Load() != 0 {
			t.Errorf("second: %s, error %+v, %d calls; want error INTERRUPTED, no call", s.State, s.LastError, second.Load())
		}
	})
}
