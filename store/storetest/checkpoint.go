package storetest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/gotasker/tasker/store"
)

// checkpointCases pin down a step's Checkpoint: set by a step change that
// has one, kept by every change that has none.
var checkpointCases = []testCase{
	{"a step change with a Checkpoint stores it byte for byte", testCheckpointStored},
	{"a step change without a Checkpoint keeps it: a retry, a claim, a completion, a reset to attempt 0", testCheckpointKept},
	{"a step change with a new Checkpoint replaces it whole", testCheckpointReplaced},
	{"an empty Checkpoint is the same as none: it keeps the stored one", testCheckpointEmptyKeeps},
	{"a step created by a change from \"\" gets the change's Checkpoint", testCheckpointCreatedStep},
	{"CreateTask stores the steps' Checkpoints; Steps and Snapshot return them", testCheckpointCreateTask},
	{"a conflicting batch leaves Checkpoints as they were", testCheckpointConflict},
	{"Checkpoints are copied in and out: callers cannot change stored data", testCheckpointCopied},
}

// withCheckpoint returns c with the checkpoint cp.
func withCheckpoint(c store.Change, cp string) store.Change {
	c.Checkpoint = json.RawMessage(cp)
	return c
}

// checkpointed returns the stored form of task id's sample steps named by
// names, the first with checkpoint cp.
func checkpointed(id, cp string, names ...string) []store.Step {
	steps := withTaskID(id, sampleSteps(names...))
	steps[0].Checkpoint = json.RawMessage(cp)
	return steps
}

// createCheckpointed stores task id with sample steps named by names, the
// first with checkpoint cp, and returns the steps as stored.
func createCheckpointed(t *testing.T, s store.Store, id, cp string, names ...string) []store.Step {
	t.Helper()
	steps := checkpointed(id, cp, names...)
	if _, _, err := s.CreateTask(context.Background(), sampleTask(id), steps); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	return steps
}

// checkSnapshotSteps checks the steps of task id's Snapshot, if the store
// has Snapshot.
func checkSnapshotSteps(t *testing.T, s store.Store, id string, want []store.Step) {
	t.Helper()
	sn, ok := s.(store.Snapshotter)
	if !ok {
		return
	}
	snap, err := sn.Snapshot(context.Background(), id)
	if err != nil {
		t.Fatalf("Snapshot(%q): %v", id, err)
	}
	checkSteps(t, snap.Steps, want)
}

func testCheckpointStored(t *testing.T, s store.Store) {
	create(t, s, "t1", "a", "b")
	// Spacing, escapes and a trailing newline: stored as given, not re-encoded.
	cp := "{ \"page\" :  3, \"cursor\": \"\\u00e9\", \"seen\": [1, 2.50] }\n"
	c := withCheckpoint(claim("t1", "a", 1, at(10)), cp)
	apply(t, s, c)
	want := withTaskID("t1", sampleSteps("a", "b"))
	want[0].State, want[0].Attempts, want[0].UpdatedAt = "in_progress", 1, at(10)
	want[0].Checkpoint = json.RawMessage(cp)
	checkSteps(t, getSteps(t, s, "t1"), want)
	checkSnapshotSteps(t, s, "t1", want)
}

func testCheckpointKept(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	apply(t, s, withCheckpoint(claim("t1", "a", 1, at(10)), `{"page": 3}`))
	fail := &store.Failure{Message: "timeout", Type: "transient", Retryable: true, Attempt: 1}
	for _, c := range []store.Change{
		{TaskID: "t1", Step: "a", From: "in_progress", FromAttempt: 1, To: "pending", Attempt: 1,
			Error: fail, NextAttemptAt: at(30), At: at(20)},
		claim("t1", "a", 2, at(31)),
		complete("t1", "a", 2, `{"ok": true}`, at(40)),
		{TaskID: "t1", Step: "a", From: "completed", FromAttempt: 2, To: "pending", Attempt: 0,
			At: at(50), By: "operator:ann", Reason: "retry"},
	} {
		apply(t, s, c)
		// Every other value is replaced whole, as without a checkpoint.
		want := store.Step{TaskID: "t1", Name: "a", State: c.To, Attempts: c.Attempt, Result: c.Result,
			Error: c.Error, NextAttemptAt: c.NextAttemptAt, UpdatedAt: c.At, Checkpoint: json.RawMessage(`{"page": 3}`)}
		checkSteps(t, getSteps(t, s, "t1"), []store.Step{want})
	}
}

func testCheckpointReplaced(t *testing.T, s store.Store) {
	want := createCheckpointed(t, s, "t1", `{"page": 1, "cursor": "a long cursor"}`, "a", "b")
	apply(t, s, withCheckpoint(claim("t1", "a", 1, at(10)), `{"page": 2}`))
	want[0].State, want[0].Attempts, want[0].UpdatedAt = "in_progress", 1, at(10)
	want[0].Checkpoint = json.RawMessage(`{"page": 2}`)
	checkSteps(t, getSteps(t, s, "t1"), want)

	// Within one batch the last checkpoint given wins.
	apply(t, s,
		withCheckpoint(store.Change{TaskID: "t1", Step: "a", From: "in_progress", FromAttempt: 1,
			To: "in_progress", Attempt: 1, At: at(11)}, `{"page": 3}`),
		withCheckpoint(complete("t1", "a", 1, `"done"`, at(12)), `{"page": 4}`))
	want[0].State, want[0].Result, want[0].UpdatedAt = "completed", json.RawMessage(`"done"`), at(12)
	want[0].Checkpoint = json.RawMessage(`{"page": 4}`)
	checkSteps(t, getSteps(t, s, "t1"), want)
}

func testCheckpointEmptyKeeps(t *testing.T, s store.Store) {
	want := createCheckpointed(t, s, "t1", `{"page": 1}`, "a")
	c := claim("t1", "a", 1, at(10))
	c.Checkpoint = json.RawMessage{}
	apply(t, s, c)
	want[0].State, want[0].Attempts, want[0].UpdatedAt = "in_progress", 1, at(10)
	checkSteps(t, getSteps(t, s, "t1"), want)
}

func testCheckpointCreatedStep(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	with := withCheckpoint(created("t1", "b", 1), `{"resume": "here"}`)
	without := created("t1", "c", 2)
	apply(t, s, with, without)
	want := withTaskID("t1", sampleSteps("a"))
	want = append(want,
		store.Step{TaskID: "t1", Name: "b", Position: 1, State: "pending", UpdatedAt: at(20),
			Checkpoint: json.RawMessage(`{"resume": "here"}`)},
		store.Step{TaskID: "t1", Name: "c", Position: 2, State: "pending", UpdatedAt: at(20)})
	checkSteps(t, getSteps(t, s, "t1"), want)
	// A later change without one keeps what the creation stored.
	apply(t, s, claim("t1", "b", 1, at(21)))
	want[1].State, want[1].Attempts, want[1].UpdatedAt = "in_progress", 1, at(21)
	checkSteps(t, getSteps(t, s, "t1"), want)
}

func testCheckpointCreateTask(t *testing.T, s store.Store) {
	steps := checkpointed("t1", `{"page": 7}`, "a", "b", "c")
	steps[2].Checkpoint = json.RawMessage("[1,\n 2]")
	if _, _, err := s.CreateTask(context.Background(), sampleTask("t1"), steps); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	checkSteps(t, getSteps(t, s, "t1"), steps)
	checkSnapshotSteps(t, s, "t1", steps)
}

func testCheckpointConflict(t *testing.T, s store.Store) {
	want := createCheckpointed(t, s, "t1", `{"page": 1}`, "a", "b")
	err := s.Apply(context.Background(), []store.Change{
		withCheckpoint(claim("t1", "a", 1, at(10)), `{"page": 2}`),
		withCheckpoint(created("t1", "c", 2), `{"page": 0}`),
		withCheckpoint(claim("t1", "b", 2, at(10)), `{"page": 9}`), // b is at attempt 0
	})
	wantErr(t, "Apply", err, store.ErrConflict)
	checkSteps(t, getSteps(t, s, "t1"), want)
	checkSnapshotSteps(t, s, "t1", want)
}

func testCheckpointCopied(t *testing.T, s store.Store) {
	given := checkpointed("t1", `{"page": 1}`, "a", "b")
	want := checkpointed("t1", `{"page": 1}`, "a", "b")
	if _, _, err := s.CreateTask(context.Background(), sampleTask("t1"), given); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	given[0].Checkpoint[0] = '['
	c := withCheckpoint(claim("t1", "b", 1, at(10)), `{"page": 2}`)
	apply(t, s, c)
	c.Checkpoint[0] = '['
	want[1].State, want[1].Attempts, want[1].UpdatedAt = "in_progress", 1, at(10)
	want[1].Checkpoint = json.RawMessage(`{"page": 2}`)

	scribble(getSteps(t, s, "t1"))
	if sn, ok := s.(store.Snapshotter); ok {
		snap, err := sn.Snapshot(context.Background(), "t1")
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		scribble(snap.Steps)
	}
	checkSteps(t, getSteps(t, s, "t1"), want)
	checkSnapshotSteps(t, s, "t1", want)
}

// scribble overwrites the first byte of every checkpoint of steps.
func scribble(steps []store.Step) {
	for _, st := range steps {
		if len(st.Checkpoint) > 0 {
			st.Checkpoint[0] = '['
		}
	}
}

func testDurableCheckpoints(t *testing.T, s store.Store, reopen func(store.Store) store.Store) {
	want := createCheckpointed(t, s, "t1", `{"from": "create"}`, "a", "b")
	apply(t, s,
		withCheckpoint(claim("t1", "b", 1, at(10)), `{"from": "claim"}`),
		withCheckpoint(created("t1", "c", 2), `{"from": "creation"}`),
		claim("t1", "a", 1, at(11)))
	want[0].State, want[0].Attempts, want[0].UpdatedAt = "in_progress", 1, at(11)
	want[1].State, want[1].Attempts, want[1].UpdatedAt = "in_progress", 1, at(10)
	want[1].Checkpoint = json.RawMessage(`{"from": "claim"}`)
	want = append(want, store.Step{TaskID: "t1", Name: "c", Position: 2, State: "pending",
		UpdatedAt: at(20), Checkpoint: json.RawMessage(`{"from": "creation"}`)})

	s = reopen(s)
	checkSteps(t, getSteps(t, s, "t1"), want)
	checkSnapshotSteps(t, s, "t1", want)

	// The reopened store keeps a checkpoint and replaces one.
	apply(t, s, complete("t1", "a", 1, `1`, at(30)),
		withCheckpoint(complete("t1", "b", 1, `2`, at(31)), `{"from": "reopened"}`))
	want[0].State, want[0].Result, want[0].UpdatedAt = "completed", json.RawMessage(`1`), at(30)
	want[1].State, want[1].Result, want[1].UpdatedAt = "completed", json.RawMessage(`2`), at(31)
	want[1].Checkpoint = json.RawMessage(`{"from": "reopened"}`)
	checkSteps(t, getSteps(t, s, "t1"), want)
}
