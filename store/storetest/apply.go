package storetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gotasker/tasker/store"
)

var applyCases = []testCase{
	{"Apply moves a step whose state and attempt match, replacing its values whole", testApplyReplaces},
	{"Apply records every change as a transition with By, Reason, Attempt and At", testApplyRecords},
	{"Apply with a stale From wraps ErrConflict and applies nothing of the batch", testStaleFrom},
	{"Apply with a stale FromAttempt wraps ErrConflict and applies nothing of the batch", testStaleAttempt},
	{"changes in a batch see the effect of earlier ones: claim then complete", testBatchSequential},
	{"a change conflicting with an earlier one of its batch fails the batch", testBatchSelfConflict},
	{"a batch spanning tasks is atomic across them", testBatchAcrossTasks},
	{"a task change moves the task state on From and sets UpdatedAt", testTaskChange},
	{"a task change with a Deadline replaces the task's deadline", testTaskChangeDeadline},
	{"a task change with a stale From wraps ErrConflict", testTaskChangeStale},
	{"Apply naming an unknown task or step wraps ErrConflict", testApplyUnknown},
	{"Transitions are listed oldest first in apply order, not by At", testTransitionOrder},
	{"Apply stamps a zero At with the time of the call", testApplyStampsAt},
	{"Apply of an empty batch succeeds and does nothing", testApplyEmpty},
}

func testApplyReplaces(t *testing.T, s store.Store) {
	create(t, s, "t1", "a", "b")
	want := withTaskID("t1", sampleSteps("a", "b"))
	check := func(step store.Step) {
		t.Helper()
		want[0] = step
		checkSteps(t, getSteps(t, s, "t1"), want)
	}
	fail := &store.Failure{Message: "timeout", Type: "transient", Retryable: true, Attempt: 1}
	apply(t, s, claim("t1", "a", 1, at(10)))
	check(store.Step{TaskID: "t1", Name: "a", State: "in_progress", Attempts: 1, UpdatedAt: at(10)})

	apply(t, s, store.Change{TaskID: "t1", Step: "a", From: "in_progress", FromAttempt: 1,
		To: "pending", Attempt: 1, Error: fail, NextAttemptAt: at(30), At: at(20)})
	check(store.Step{TaskID: "t1", Name: "a", State: "pending", Attempts: 1,
		Error: fail, NextAttemptAt: at(30), UpdatedAt: at(20)})

	// Error and NextAttemptAt are replaced, not merged: a change without
	// them clears them.
	apply(t, s, claim("t1", "a", 2, at(31)))
	check(store.Step{TaskID: "t1", Name: "a", State: "in_progress", Attempts: 2, UpdatedAt: at(31)})

	apply(t, s, complete("t1", "a", 2, `{"ok": true}`, at(40)))
	check(store.Step{TaskID: "t1", Name: "a", State: "completed", Attempts: 2,
		Result: json.RawMessage(`{"ok": true}`), UpdatedAt: at(40)})
}

func testApplyRecords(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	c1 := claim("t1", "a", 1, at(10))
	c2 := store.Change{TaskID: "t1", Step: "a", From: "in_progress", FromAttempt: 1,
		To: "cancelled", Attempt: 1, At: at(11), By: "operator:bob", Reason: "customer asked"}
	apply(t, s, c1)
	apply(t, s, c2)
	checkTransitions(t, getTransitions(t, s, "t1"), transitionsOf(c1, c2))
}

// staleBatch applies a valid change to step a, then stale to step b, and
// checks that neither is applied.
func staleBatch(t *testing.T, s store.Store, stale store.Change) {
	t.Helper()
	create(t, s, "t1", "a", "b")
	apply(t, s, claim("t1", "b", 1, at(5)))
	before := getSteps(t, s, "t1")
	err := s.Apply(context.Background(), []store.Change{claim("t1", "a", 1, at(10)), stale})
	wantErr(t, "Apply", err, store.ErrConflict)
	checkSteps(t, getSteps(t, s, "t1"), before)
	checkTransitions(t, getTransitions(t, s, "t1"), transitionsOf(claim("t1", "b", 1, at(5))))
}

func testStaleFrom(t *testing.T, s store.Store) {
	// Step b is in_progress at attempt 1, not pending.
	stale := store.Change{TaskID: "t1", Step: "b", From: "pending", FromAttempt: 1,
		To: "in_progress", Attempt: 2, At: at(10)}
	staleBatch(t, s, stale)
}

func testStaleAttempt(t *testing.T, s store.Store) {
	// Step b is in_progress at attempt 1, not 0.
	staleBatch(t, s, complete("t1", "b", 0, `{}`, at(10)))
}

func testBatchSequential(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	c1, c2 := claim("t1", "a", 1, at(10)), complete("t1", "a", 1, `"done"`, at(11))
	apply(t, s, c1, c2)
	checkSteps(t, getSteps(t, s, "t1"), []store.Step{{TaskID: "t1", Name: "a", State: "completed",
		Attempts: 1, Result: json.RawMessage(`"done"`), UpdatedAt: at(11)}})
	checkTransitions(t, getTransitions(t, s, "t1"), transitionsOf(c1, c2))
}

func testBatchSelfConflict(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	err := s.Apply(context.Background(), []store.Change{claim("t1", "a", 1, at(10)), claim("t1", "a", 1, at(11))})
	wantErr(t, "Apply of a claim twice in one batch", err, store.ErrConflict)
	checkSteps(t, getSteps(t, s, "t1"), withTaskID("t1", sampleSteps("a")))
	if trs := getTransitions(t, s, "t1"); len(trs) != 0 {
		t.Errorf("Transitions = %+v, want none", trs)
	}
}

func testBatchAcrossTasks(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	create(t, s, "t2", "a")
	err := s.Apply(context.Background(), []store.Change{
		claim("t1", "a", 1, at(10)),
		{TaskID: "t1", From: "pending", To: "running", At: at(10)},
		complete("t2", "a", 1, `{}`, at(10)), // t2's step is pending
	})
	wantErr(t, "Apply", err, store.ErrConflict)
	checkTask(t, getTask(t, s, "t1"), sampleTask("t1"))
	checkSteps(t, getSteps(t, s, "t1"), withTaskID("t1", sampleSteps("a")))
	if trs := getTransitions(t, s, "t1"); len(trs) != 0 {
		t.Errorf("Transitions = %+v, want none", trs)
	}
}

func testTaskChange(t *testing.T, s store.Store) {
	want := create(t, s, "t1", "a")
	// FromAttempt and Attempt do not matter for a task change.
	c := store.Change{TaskID: "t1", From: "pending", FromAttempt: 7, To: "running", Attempt: 3,
		At: at(50), By: "engine-1", Reason: "started"}
	apply(t, s, c)
	want.State, want.UpdatedAt = "running", at(50)
	checkTask(t, getTask(t, s, "t1"), want)
	checkSteps(t, getSteps(t, s, "t1"), withTaskID("t1", sampleSteps("a")))
	checkTransitions(t, getTransitions(t, s, "t1"), transitionsOf(c))
	if got := getTransitions(t, s, "t1")[0].Attempt; got != 0 {
		t.Errorf("task transition Attempt = %d, want 0", got)
	}
}

func testTaskChangeDeadline(t *testing.T, s store.Store) {
	task := sampleTask("t1")
	task.Deadline = at(100)
	if _, _, err := s.CreateTask(context.Background(), task, sampleSteps("a")); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	apply(t, s, store.Change{TaskID: "t1", From: "pending", To: "running", At: at(50)})
	if got := getTask(t, s, "t1").Deadline; !got.Equal(at(100)) {
		t.Errorf("Deadline after a change without one = %v, want %v kept", got, at(100))
	}
	apply(t, s, store.Change{TaskID: "t1", From: "running", To: "pending", At: at(60), Deadline: at(200)})
	if got := getTask(t, s, "t1").Deadline; !got.Equal(at(200)) {
		t.Errorf("Deadline = %v, want the change's %v", got, at(200))
	}
}

func testTaskChangeStale(t *testing.T, s store.Store) {
	want := create(t, s, "t1", "a")
	err := s.Apply(context.Background(), []store.Change{
		claim("t1", "a", 1, at(10)),
		{TaskID: "t1", From: "running", To: "completed", At: at(10)},
	})
	wantErr(t, "Apply", err, store.ErrConflict)
	checkTask(t, getTask(t, s, "t1"), want)
	checkSteps(t, getSteps(t, s, "t1"), withTaskID("t1", sampleSteps("a")))
}

func testApplyUnknown(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	for name, c := range map[string]store.Change{
		"unknown task's step": claim("nope", "a", 1, at(10)),
		"unknown task":        {TaskID: "nope", From: "pending", To: "running", At: at(10)},
		"unknown step":        claim("t1", "nope", 1, at(10)),
	} {
		err := s.Apply(context.Background(), []store.Change{claim("t1", "a", 1, at(9)), c})
		wantErr(t, "Apply naming an "+name, err, store.ErrConflict)
	}
	checkSteps(t, getSteps(t, s, "t1"), withTaskID("t1", sampleSteps("a")))
}

func testTransitionOrder(t *testing.T, s store.Store) {
	create(t, s, "t1", "a", "b")
	// At runs backwards: the order is the order of application.
	batch1 := []store.Change{claim("t1", "b", 1, at(30)), claim("t1", "a", 1, at(20))}
	batch2 := []store.Change{
		complete("t1", "a", 1, `1`, at(10)),
		{TaskID: "t1", From: "pending", To: "running", At: at(5)},
		complete("t1", "b", 1, `2`, at(0)),
	}
	apply(t, s, batch1...)
	apply(t, s, batch2...)
	checkTransitions(t, getTransitions(t, s, "t1"), transitionsOf(append(batch1, batch2...)...))
}

func testApplyStampsAt(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	before := time.Now()
	apply(t, s, claim("t1", "a", 1, time.Time{}))
	after := time.Now()
	trs := getTransitions(t, s, "t1")
	if len(trs) != 1 {
		t.Fatalf("Transitions = %+v, want 1", trs)
	}
	if got := trs[0].At; got.Before(before.Round(0)) || got.After(after.Round(0)) {
		t.Errorf("stamped At = %v, want between %v and %v", got, before, after)
	}
	if got := getSteps(t, s, "t1")[0].UpdatedAt; !got.Equal(trs[0].At) {
		t.Errorf("step UpdatedAt = %v, want the stamped At %v", got, trs[0].At)
	}
}

func testApplyEmpty(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	apply(t, s)
	if trs := getTransitions(t, s, "t1"); len(trs) != 0 {
		t.Errorf("Transitions = %+v, want none", trs)
	}
}
