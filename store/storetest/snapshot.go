package storetest

import (
	"context"
	"testing"

	"github.com/gotasker/tasker/store"
)

var snapshotCases = []testCase{
	{"Snapshot (if the store has it) agrees with Task, Steps and Transitions", testSnapshot},
	{"Snapshot (if the store has it) of an unknown task wraps ErrNotFound", testSnapshotNotFound},
}

// snapshotter returns s as a store.Snapshotter, or skips the test.
func snapshotter(t *testing.T, s store.Store) store.Snapshotter {
	t.Helper()
	sn, ok := s.(store.Snapshotter)
	if !ok {
		t.Skip("the store has no Snapshot")
	}
	return sn
}

func testSnapshot(t *testing.T, s store.Store) {
	sn := snapshotter(t, s)
	create(t, s, "t1", "a", "b")
	apply(t, s, claim("t1", "a", 1, at(1)), complete("t1", "a", 1, `{"n": 1}`, at(2)))
	snap, err := sn.Snapshot(context.Background(), "t1")
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	checkTask(t, snap.Task, getTask(t, s, "t1"))
	checkSteps(t, snap.Steps, getSteps(t, s, "t1"))
	checkTransitions(t, snap.Transitions, getTransitions(t, s, "t1"))
	if len(snap.Transitions) != 2 || snap.Steps[0].State != "completed" {
		t.Errorf("snapshot = %+v, want a completed and two transitions", snap)
	}
}

func testSnapshotNotFound(t *testing.T, s store.Store) {
	sn := snapshotter(t, s)
	_, err := sn.Snapshot(context.Background(), "nope")
	wantErr(t, "Snapshot", err, store.ErrNotFound)
}
