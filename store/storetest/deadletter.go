package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gotasker/tasker/store"
)

var deadLetterCases = []testCase{
	{"a task change with a DeadLetter adds a pending entry: TaskID, Status and CreatedAt set by the store", testDeadLetterAdds},
	{"an empty DeadLetter ID is filled with a unique one; a zero At stamps CreatedAt", testDeadLetterFillsID},
	{"a batch that conflicts adds no dead-letter entry", testDeadLetterConflict},
	{"a DeadLetter ID already taken wraps ErrConflict and applies nothing of the batch", testDeadLetterTakenID},
	{"ResolveDeadLetters resolves every pending entry of its task only, and leaves resolved ones alone", testResolveDeadLetters},
	{"a batch that conflicts resolves no dead-letter entry", testResolveConflict},
	{"changes in a batch see the entries of earlier ones; a change resolves before it adds", testDeadLetterBatchOrder},
	{"DeadLetters filters by TaskID and Status and applies Limit after filtering, oldest first", testDeadLettersFilter},
	{"DeadLetter and ResolveDeadLetters on a step change are rejected and nothing of the batch applies", testDeadLetterOnStep},
	{"dead-letter entries are copied in and out: callers cannot change stored data", testDeadLetterNoAliasing},
}

// toError moves task id from one state to "error", adding the dead-letter
// entry dl (its Reason and Message from the entry's ID).
func toError(id, from, dl string, when time.Time) store.Change {
	return store.Change{TaskID: id, From: from, To: "error", At: when,
		DeadLetter: &store.DeadLetter{ID: dl, Reason: "retries_exhausted", Message: "entry " + dl}}
}

// retried moves task id from "error" to "running", resolving its pending
// dead-letter entries.
func retried(id string, when time.Time, by, reason string) store.Change {
	return store.Change{TaskID: id, From: "error", To: "running", At: when, By: by, Reason: reason,
		ResolveDeadLetters: true}
}

// pendingEntry is the entry toError(taskID, _, id, when) adds.
func pendingEntry(id, taskID string, when time.Time) store.DeadLetter {
	return store.DeadLetter{ID: id, TaskID: taskID, Reason: "retries_exhausted", Message: "entry " + id,
		Status: store.DeadLetterPending, CreatedAt: when}
}

// resolvedEntry is e resolved by retried(_, when, by, reason).
func resolvedEntry(e store.DeadLetter, when time.Time, by, reason string) store.DeadLetter {
	e.Status, e.ResolvedAt, e.ResolvedBy, e.Resolution = store.DeadLetterResolved, when, by, reason
	return e
}

// createRunning stores sample tasks with ids, moved to "running".
func createRunning(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		create(t, s, id, "a")
		apply(t, s, store.Change{TaskID: id, From: "pending", To: "running", At: at(1)})
	}
}

func getDeadLetters(t *testing.T, s store.Store, f store.DeadLetterFilter) []store.DeadLetter {
	t.Helper()
	dls, err := s.DeadLetters(context.Background(), f)
	if err != nil {
		t.Fatalf("DeadLetters(%+v): %v", f, err)
	}
	return dls
}

func deadLetterIDs(t *testing.T, s store.Store, f store.DeadLetterFilter) []string {
	t.Helper()
	ids := []string{}
	for _, d := range getDeadLetters(t, s, f) {
		ids = append(ids, d.ID)
	}
	return ids
}

func checkDeadLetters(t *testing.T, got, want []store.DeadLetter) {
	t.Helper()
	checkAll(t, "dead-letter entries", got, want, func(d *diff, g, w store.DeadLetter) {
		d.eq("ID", g.ID, w.ID)
		d.eq("TaskID", g.TaskID, w.TaskID)
		d.eq("Reason", g.Reason, w.Reason)
		d.eq("Message", g.Message, w.Message)
		d.eq("Status", g.Status, w.Status)
		d.time("CreatedAt", g.CreatedAt, w.CreatedAt)
		d.time("ResolvedAt", g.ResolvedAt, w.ResolvedAt)
		d.eq("ResolvedBy", g.ResolvedBy, w.ResolvedBy)
		d.eq("Resolution", g.Resolution, w.Resolution)
	})
}

// noDeadLetters checks that s holds no dead-letter entry.
func noDeadLetters(t *testing.T, s store.Store) {
	t.Helper()
	if dls := getDeadLetters(t, s, store.DeadLetterFilter{}); len(dls) != 0 {
		t.Errorf("DeadLetters = %+v, want none", dls)
	}
}

func testDeadLetterAdds(t *testing.T, s store.Store) {
	want := create(t, s, "t1", "a")
	// TaskID, Status, CreatedAt and the resolution fields given are not kept.
	c := store.Change{TaskID: "t1", From: "pending", To: "error", At: at(10), By: "engine", Reason: "stale",
		DeadLetter: &store.DeadLetter{ID: "d1", TaskID: "t2", Reason: "staleness", Message: "no heartbeat for 5m",
			Status: store.DeadLetterResolved, CreatedAt: at(99), ResolvedAt: at(98), ResolvedBy: "x", Resolution: "y"}}
	apply(t, s, c)
	checkDeadLetters(t, getDeadLetters(t, s, store.DeadLetterFilter{}), []store.DeadLetter{{
		ID: "d1", TaskID: "t1", Reason: "staleness", Message: "no heartbeat for 5m",
		Status: store.DeadLetterPending, CreatedAt: at(10)}})
	want.State, want.UpdatedAt = "error", at(10)
	checkTask(t, getTask(t, s, "t1"), want)
	checkTransitions(t, getTransitions(t, s, "t1"), transitionsOf(c))
}

func testDeadLetterFillsID(t *testing.T, s store.Store) {
	createRunning(t, s, "t1", "t2")
	apply(t, s, toError("t1", "running", "", at(10)), toError("t2", "running", "", at(11)))
	apply(t, s, toError("t1", "error", "", time.Time{}))
	got := getDeadLetters(t, s, store.DeadLetterFilter{})
	if len(got) != 3 {
		t.Fatalf("DeadLetters = %+v, want 3", got)
	}
	seen := map[string]bool{}
	for _, d := range got {
		if d.ID == "" || seen[d.ID] {
			t.Errorf("filled ID %q: want a non-empty ID unlike the others %v", d.ID, seen)
		}
		seen[d.ID] = true
	}
	stamped := getTransitions(t, s, "t1")[2].At
	want := []store.DeadLetter{pendingEntry(got[0].ID, "t1", at(10)), pendingEntry(got[1].ID, "t2", at(11)),
		pendingEntry(got[2].ID, "t1", stamped)}
	for i := range want {
		want[i].Message = "entry "
	}
	checkDeadLetters(t, got, want)
}

func testDeadLetterConflict(t *testing.T, s store.Store) {
	createRunning(t, s, "t1")
	for name, batch := range map[string][]store.Change{
		"a later change conflicts": {toError("t1", "running", "d1", at(10)), claim("t1", "a", 2, at(10))},
		"its own change is stale":  {claim("t1", "a", 1, at(10)), toError("t1", "pending", "d1", at(10))},
	} {
		err := s.Apply(context.Background(), batch)
		wantErr(t, "Apply of a batch where "+name, err, store.ErrConflict)
	}
	noDeadLetters(t, s)
	if got := getTask(t, s, "t1").State; got != "running" {
		t.Errorf("task state = %q, want running", got)
	}
}

func testDeadLetterTakenID(t *testing.T, s store.Store) {
	createRunning(t, s, "t1", "t2")
	apply(t, s, toError("t1", "running", "d1", at(10)))
	for name, batch := range map[string][]store.Change{
		"an ID of another task's entry": {claim("t2", "a", 1, at(20)), toError("t2", "running", "d1", at(20))},
		"an ID of the task's own entry": {toError("t1", "error", "d1", at(20))},
		"one new ID twice in a batch":   {toError("t2", "running", "d2", at(20)), toError("t2", "error", "d2", at(21))},
		"a new ID before a conflict":    {toError("t2", "running", "d3", at(20)), claim("t2", "a", 5, at(20))},
	} {
		err := s.Apply(context.Background(), batch)
		wantErr(t, "Apply with "+name, err, store.ErrConflict)
	}
	checkDeadLetters(t, getDeadLetters(t, s, store.DeadLetterFilter{}), []store.DeadLetter{pendingEntry("d1", "t1", at(10))})
	checkSteps(t, getSteps(t, s, "t2"), withTaskID("t2", sampleSteps("a")))
	if got := getTask(t, s, "t2").State; got != "running" {
		t.Errorf("t2 state = %q, want running", got)
	}
	// The ID refused in a failed batch is free.
	apply(t, s, toError("t2", "running", "d3", at(30)))
}

func testResolveDeadLetters(t *testing.T, s store.Store) {
	createRunning(t, s, "t1", "t2")
	apply(t, s, toError("t1", "running", "d1", at(10)))
	first := retried("t1", at(20), "operator:ann", "fixed the card")
	apply(t, s, first)
	apply(t, s, toError("t1", "running", "d2", at(30)))
	apply(t, s, toError("t2", "running", "d3", at(35)))
	apply(t, s, toError("t1", "error", "d4", at(40)))
	second := retried("t1", at(50), "operator:bob", "stock arrived")
	apply(t, s, second)
	checkDeadLetters(t, getDeadLetters(t, s, store.DeadLetterFilter{}), []store.DeadLetter{
		resolvedEntry(pendingEntry("d1", "t1", at(10)), at(20), "operator:ann", "fixed the card"),
		resolvedEntry(pendingEntry("d2", "t1", at(30)), at(50), "operator:bob", "stock arrived"),
		pendingEntry("d3", "t2", at(35)),
		resolvedEntry(pendingEntry("d4", "t1", at(40)), at(50), "operator:bob", "stock arrived"),
	})
	checkTransitions(t, getTransitions(t, s, "t1")[5:], transitionsOf(second))
	// A task without pending entries resolves nothing, and its change applies.
	apply(t, s, store.Change{TaskID: "t1", From: "running", To: "error", At: at(60)}, retried("t1", at(61), "", ""))
	pending := store.DeadLetterFilter{Status: store.DeadLetterPending}
	if got := deadLetterIDs(t, s, pending); !slices.Equal(got, []string{"d3"}) {
		t.Errorf("pending entries = %v, want [d3]", got)
	}
}

func testResolveConflict(t *testing.T, s store.Store) {
	createRunning(t, s, "t1")
	apply(t, s, toError("t1", "running", "d1", at(10)))
	for name, batch := range map[string][]store.Change{
		"a later change conflicts": {retried("t1", at(20), "op", "r"), claim("t1", "a", 2, at(20))},
		"its own change is stale":  {claim("t1", "a", 1, at(20)), retried("t1", at(20), "op", "r"), retried("t1", at(20), "op", "r")},
	} {
		err := s.Apply(context.Background(), batch)
		wantErr(t, "Apply of a batch where "+name, err, store.ErrConflict)
	}
	checkDeadLetters(t, getDeadLetters(t, s, store.DeadLetterFilter{}), []store.DeadLetter{pendingEntry("d1", "t1", at(10))})
}

func testDeadLetterBatchOrder(t *testing.T, s store.Store) {
	createRunning(t, s, "t1")
	// One change both resolves and adds: it resolves the entries pending
	// before it, and its own entry stays pending.
	both := retried("t1", at(20), "op", "again")
	both.DeadLetter = &store.DeadLetter{ID: "d2", Reason: "retries_exhausted", Message: "entry d2"}
	apply(t, s, toError("t1", "running", "d1", at(10)), both)
	// A later change of a batch resolves what an earlier one added.
	apply(t, s, toError("t1", "running", "d3", at(30)), retried("t1", at(31), "op", "done"))
	checkDeadLetters(t, getDeadLetters(t, s, store.DeadLetterFilter{}), []store.DeadLetter{
		resolvedEntry(pendingEntry("d1", "t1", at(10)), at(20), "op", "again"),
		resolvedEntry(pendingEntry("d2", "t1", at(20)), at(31), "op", "done"),
		resolvedEntry(pendingEntry("d3", "t1", at(30)), at(31), "op", "done"),
	})
}

// createDeadLetters adds, with CreatedAt running backwards:
//
//	d1 t1 resolved   d4 t2 pending
//	d2 t2 pending    d5 t1 pending
//	d3 t1 resolved   d6 t3 pending
func createDeadLetters(t *testing.T, s store.Store) {
	t.Helper()
	createRunning(t, s, "t1", "t2", "t3")
	apply(t, s, toError("t1", "running", "d1", at(100)))
	apply(t, s, toError("t2", "running", "d2", at(99)))
	apply(t, s, toError("t1", "error", "d3", at(98)), retried("t1", at(98), "op", "r"))
	apply(t, s, toError("t2", "error", "d4", at(97)))
	apply(t, s, toError("t1", "running", "d5", at(96)))
	apply(t, s, toError("t3", "running", "d6", at(95)))
}

func testDeadLettersFilter(t *testing.T, s store.Store) {
	createDeadLetters(t, s)
	pending, resolved := store.DeadLetterPending, store.DeadLetterResolved
	for _, tt := range []struct {
		f    store.DeadLetterFilter
		want []string
	}{
		{store.DeadLetterFilter{}, []string{"d1", "d2", "d3", "d4", "d5", "d6"}},
		{store.DeadLetterFilter{TaskID: "t1"}, []string{"d1", "d3", "d5"}},
		{store.DeadLetterFilter{Status: pending}, []string{"d2", "d4", "d5", "d6"}},
		{store.DeadLetterFilter{Status: resolved}, []string{"d1", "d3"}},
		{store.DeadLetterFilter{TaskID: "t1", Status: pending}, []string{"d5"}},
		{store.DeadLetterFilter{TaskID: "t3", Status: resolved}, []string{}},
		{store.DeadLetterFilter{TaskID: "nope"}, []string{}},
		{store.DeadLetterFilter{Status: "nope"}, []string{}},
		{store.DeadLetterFilter{Limit: 2}, []string{"d1", "d2"}},
		{store.DeadLetterFilter{Limit: -1}, []string{"d1", "d2", "d3", "d4", "d5", "d6"}},
		{store.DeadLetterFilter{Limit: 10}, []string{"d1", "d2", "d3", "d4", "d5", "d6"}},
		{store.DeadLetterFilter{Status: pending, Limit: 3}, []string{"d2", "d4", "d5"}},
		{store.DeadLetterFilter{TaskID: "t1", Limit: 2}, []string{"d1", "d3"}},
	} {
		if got := deadLetterIDs(t, s, tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("DeadLetters(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
}

func testDeadLetterOnStep(t *testing.T, s store.Store) {
	createRunning(t, s, "t1")
	apply(t, s, toError("t1", "running", "d1", at(10)))
	withEntry := claim("t1", "a", 1, at(20))
	withEntry.DeadLetter = &store.DeadLetter{ID: "d2"}
	resolving := claim("t1", "a", 1, at(20))
	resolving.ResolveDeadLetters = true
	for name, c := range map[string]store.Change{"DeadLetter": withEntry, "ResolveDeadLetters": resolving} {
		err := s.Apply(context.Background(), []store.Change{retried("t1", at(20), "op", "r"), c})
		if err == nil {
			t.Errorf("Apply of a step change with %s succeeded", name)
		}
	}
	checkDeadLetters(t, getDeadLetters(t, s, store.DeadLetterFilter{}), []store.DeadLetter{pendingEntry("d1", "t1", at(10))})
	checkSteps(t, getSteps(t, s, "t1"), withTaskID("t1", sampleSteps("a")))
	if got := getTask(t, s, "t1").State; got != "error" {
		t.Errorf("task state = %q, want error", got)
	}
}

func testDeadLetterNoAliasing(t *testing.T, s store.Store) {
	createRunning(t, s, "t1")
	c := toError("t1", "running", "d1", at(10))
	apply(t, s, c)
	c.DeadLetter.ID, c.DeadLetter.Reason, c.DeadLetter.Message = "mutated", "mutated", "mutated"
	getDeadLetters(t, s, store.DeadLetterFilter{})[0].Reason = "mutated"
	checkDeadLetters(t, getDeadLetters(t, s, store.DeadLetterFilter{}), []store.DeadLetter{pendingEntry("d1", "t1", at(10))})
}
