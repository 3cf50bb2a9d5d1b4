package storetest

import (
	"context"
	"testing"

	"github.com/gotasker/tasker/store"
)

// addStepCases pin down a step change with an empty From: a running task
// gains a step.
var addStepCases = []testCase{
	{"a step change from \"\" creates the step, listed by Position, with its transition", testCreateStep},
	{"a created step can be claimed in the same batch", testCreateThenClaim},
	{"creating a step that exists wraps ErrConflict and applies nothing of the batch", testCreateExisting},
	{"creating a step of an unknown task wraps ErrConflict", testCreateUnknownTask},
}

// created returns the change that creates a pending step name at position.
func created(taskID, name string, position int) store.Change {
	return store.Change{TaskID: taskID, Step: name, To: "pending", Position: position, At: at(20), By: "engine", Reason: "decided"}
}

func testCreateStep(t *testing.T, s store.Store) {
	create(t, s, "t1", "a", "c")
	apply(t, s, store.Change{TaskID: "t1", Step: "c", From: "pending", To: "pending", At: at(10)})
	// Positions 0 and 1 are taken by a and c: b sorts between them by name.
	b := created("t1", "b", 1)
	z := created("t1", "z", 0)
	apply(t, s, b, z)
	want := withTaskID("t1", sampleSteps("a", "c"))
	want[1].UpdatedAt = at(10)
	want = []store.Step{want[0], {TaskID: "t1", Name: "z", Position: 0, State: "pending", UpdatedAt: at(20)},
		{TaskID: "t1", Name: "b", Position: 1, State: "pending", UpdatedAt: at(20)}, want[1]}
	checkSteps(t, getSteps(t, s, "t1"), want)
	trs := getTransitions(t, s, "t1")
	checkTransitions(t, trs[1:], transitionsOf(b, z))
	if trs[1].From != "" {
		t.Errorf("creation's transition From = %q, want \"\"", trs[1].From)
	}
}

func testCreateThenClaim(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	apply(t, s, created("t1", "b", 1), claim("t1", "b", 1, at(21)))
	steps := getSteps(t, s, "t1")
	if len(steps) != 2 || steps[1].Name != "b" || steps[1].State != "in_progress" || steps[1].Attempts != 1 {
		t.Errorf("steps = %+v, want b in_progress at attempt 1", steps)
	}
}

func testCreateExisting(t *testing.T, s store.Store) {
	create(t, s, "t1", "a", "b")
	err := s.Apply(context.Background(), []store.Change{created("t1", "c", 2), created("t1", "b", 1)})
	wantErr(t, "Apply", err, store.ErrConflict)
	checkSteps(t, getSteps(t, s, "t1"), withTaskID("t1", sampleSteps("a", "b")))
	if trs := getTransitions(t, s, "t1"); len(trs) != 0 {
		t.Errorf("Transitions = %+v, want none", trs)
	}
}

func testCreateUnknownTask(t *testing.T, s store.Store) {
	err := s.Apply(context.Background(), []store.Change{created("nosuch", "b", 1)})
	wantErr(t, "Apply", err, store.ErrConflict)
}
