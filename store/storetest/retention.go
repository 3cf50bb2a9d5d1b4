package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gotasker/tasker/store"
)

var retentionCases = []testCase{
	{"PurgeTasks deletes the tasks in the given states only, and returns how many", testPurgeStates},
	{"PurgeTasks never deletes a task whose state the filter does not name, however old", testPurgeKeepsUnnamedStates},
	{"PurgeTasks with UpdatedBefore deletes only tasks updated strictly before it; a zero UpdatedAt has no age", testPurgeAge},
	{"PurgeTasks keeps the KeepNewest newest tasks in States by creation order, whatever their age", testPurgeKeepNewest},
	{"PurgeTasks deletes at most Limit tasks, the least recently updated first, ties in creation order", testPurgeLimit},
	{"a purged task is gone whole: task, steps, transitions, snapshot, dead-letter entries, listing", testPurgeEverything},
	{"a purged task's idempotency key and ID may be taken by a new task", testPurgeFreesKey},
	{"a task with a pending outbox entry is not purged until the entry is acknowledged", testPurgeKeepsOutbox},
	{"PurgeTasks with no States is an error; with a done context, or closed, it deletes nothing", testPurgeRefuses},
	{"a purge racing changes that move tasks out of its states deletes each task or lets its change apply, never both", testPurgeRacesApply},
	{"PurgeTasks deletes many tasks, more than a backend's transaction holds, in one call", testPurgeMany},
}

// purger returns s as a Purger, or skips the test for a backend that does
// not purge.
func purger(t *testing.T, s store.Store) store.Purger {
	t.Helper()
	p, ok := s.(store.Purger)
	if !ok {
		t.Skip("the store is not a store.Purger")
	}
	return p
}

// finished stores a sample task id with steps a and b, a completed, and
// moves it from pending to state at second when: its UpdatedAt is at(when).
func finished(t *testing.T, s store.Store, id, state string, when int) {
	t.Helper()
	create(t, s, id, "a", "b")
	apply(t, s, claim(id, "a", 1, at(when-1)), complete(id, "a", 1, `{"ok":true}`, at(when-1)))
	apply(t, s, store.Change{TaskID: id, From: "pending", To: state, At: at(when)})
}

// purge calls PurgeTasks and checks that it deleted want tasks.
func purge(t *testing.T, p store.Purger, f store.PurgeFilter, want int) {
	t.Helper()
	n, err := p.PurgeTasks(context.Background(), f)
	if err != nil || n != want {
		t.Fatalf("PurgeTasks(%+v) = %d, %v; want %d, nil", f, n, err, want)
	}
}

// checkListed fails unless ListTasks returns exactly the tasks ids.
func checkListed(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	if got := listIDs(t, s, store.Filter{}); !slices.Equal(got, ids) {
		t.Fatalf("ListTasks = %v, want %v", got, ids)
	}
}

func testPurgeStates(t *testing.T, s store.Store) {
	p := purger(t, s)
	for i, state := range []string{"complete", "cancelled", "error", "complete", "running"} {
		finished(t, s, fmt.Sprintf("t%d", i+1), state, 10+i)
	}
	create(t, s, "t6", "a")
	purge(t, p, store.PurgeFilter{States: []string{"complete", "cancelled"}}, 3)
	checkListed(t, s, "t3", "t5", "t6")
	purge(t, p, store.PurgeFilter{States: []string{"complete", "cancelled"}}, 0)
	purge(t, p, store.PurgeFilter{States: []string{"nope"}}, 0)
	checkListed(t, s, "t3", "t5", "t6")
}

func testPurgeKeepsUnnamedStates(t *testing.T, s store.Store) {
	p := purger(t, s)
	create(t, s, "pending", "a")
	finished(t, s, "running", "running", 2)
	apply(t, s, claim("running", "b", 1, at(3))) // a step in progress
	finished(t, s, "error", "error", 4)
	finished(t, s, "done", "complete", 5)
	f := store.PurgeFilter{States: []string{"complete"}, UpdatedBefore: at(1_000_000)}
	purge(t, p, f, 1)
	purge(t, p, f, 0)
	checkListed(t, s, "pending", "running", "error")
	checkTask(t, getTask(t, s, "running"), func() store.Task {
		want := sampleTask("running")
		want.State, want.UpdatedAt = "running", at(2)
		return want
	}())
	if got := getSteps(t, s, "running"); len(got) != 2 || got[1].State != "in_progress" {
		t.Errorf("steps of the running task = %+v, want b still in progress", got)
	}
}

func testPurgeAge(t *testing.T, s store.Store) {
	p := purger(t, s)
	finished(t, s, "t1", "complete", 10)
	finished(t, s, "t2", "complete", 20)
	finished(t, s, "t3", "complete", 30)
	f := store.PurgeFilter{States: []string{"complete"}, UpdatedBefore: at(20)}
	purge(t, p, f, 1)
	checkListed(t, s, "t2", "t3")
	purge(t, p, f, 0)
	// A task updated again is judged by its new UpdatedAt.
	apply(t, s, store.Change{TaskID: "t2", From: "complete", To: "complete", At: at(40)})
	purge(t, p, store.PurgeFilter{States: []string{"complete"}, UpdatedBefore: at(31)}, 1)
	checkListed(t, s, "t2")
	// A task whose UpdatedAt is not set has no age: only a purge without
	// an age limit takes it.
	task := sampleTask("t4")
	task.State, task.UpdatedAt = "complete", time.Time{}
	if _, _, err := s.CreateTask(context.Background(), task, nil); err != nil {
		t.Fatal(err)
	}
	purge(t, p, store.PurgeFilter{States: []string{"complete"}, UpdatedBefore: at(1_000_000), Limit: 1}, 1)
	checkListed(t, s, "t4")
	purge(t, p, store.PurgeFilter{States: []string{"complete"}, UpdatedBefore: at(1_000_000)}, 0)
	purge(t, p, store.PurgeFilter{States: []string{"complete"}}, 1)
	checkListed(t, s)
}

func testPurgeKeepNewest(t *testing.T, s store.Store) {
	p := purger(t, s)
	// Creation order t1..t6; UpdatedAt in the reverse order, so that the
	// newest by creation are the oldest by age.
	for i, state := range []string{"complete", "complete", "error", "complete", "cancelled", "complete"} {
		finished(t, s, fmt.Sprintf("t%d", i+1), state, 100-10*i)
	}
	finished(t, s, "t7", "error", 5)
	states := []string{"complete", "cancelled"}
	purge(t, p, store.PurgeFilter{States: states, KeepNewest: 10}, 0)
	// Kept whatever their age: t6 and t5 (t7 and t3 are not in States).
	// Of the rest, the age limit spares t1 (updated at 100).
	purge(t, p, store.PurgeFilter{States: states, KeepNewest: 2, UpdatedBefore: at(100)}, 2)
	checkListed(t, s, "t1", "t3", "t5", "t6", "t7")
	purge(t, p, store.PurgeFilter{States: states, KeepNewest: 2}, 1)
	checkListed(t, s, "t3", "t5", "t6", "t7")
	purge(t, p, store.PurgeFilter{States: states, KeepNewest: 1}, 1)
	checkListed(t, s, "t3", "t6", "t7")
}

func testPurgeLimit(t *testing.T, s store.Store) {
	p := purger(t, s)
	// Created t1..t5; oldest first is by UpdatedAt (t4, then t2 and t3 in
	// creation order, t5, t1), not by creation or CreatedAt.
	for i, updated := range []int{50, 30, 30, 10, 40} {
		id := fmt.Sprintf("t%d", i+1)
		task := sampleTask(id)
		task.CreatedAt = at(-i)
		if _, _, err := s.CreateTask(context.Background(), task, nil); err != nil {
			t.Fatal(err)
		}
		apply(t, s, store.Change{TaskID: id, From: "pending", To: "complete", At: at(updated)})
	}
	f := store.PurgeFilter{States: []string{"complete"}, Limit: 2}
	purge(t, p, f, 2)
	checkListed(t, s, "t1", "t3", "t5")
	purge(t, p, f, 2)
	checkListed(t, s, "t1")
	purge(t, p, f, 1)
	purge(t, p, f, 0)
	checkListed(t, s)
}

func testPurgeEverything(t *testing.T, s store.Store) {
	p := purger(t, s)
	for _, id := range []string{"gone", "kept"} {
		finished(t, s, id, "running", 2)
		apply(t, s, toError(id, "running", "dl-"+id, at(3)))
		apply(t, s, retried(id, at(4), "ops", "again"), toError(id, "running", "dl2-"+id, at(5)))
	}
	apply(t, s, store.Change{TaskID: "kept", From: "error", To: "resolved", At: at(6)})
	purge(t, p, store.PurgeFilter{States: []string{"error"}}, 1)
	ctx := context.Background()
	_, err := s.Task(ctx, "gone")
	wantErr(t, "Task of a purged task", err, store.ErrNotFound)
	_, err = s.Steps(ctx, "gone")
	wantErr(t, "Steps of a purged task", err, store.ErrNotFound)
	_, err = s.Transitions(ctx, "gone")
	wantErr(t, "Transitions of a purged task", err, store.ErrNotFound)
	if sn, ok := s.(store.Snapshotter); ok {
		_, err = sn.Snapshot(ctx, "gone")
		wantErr(t, "Snapshot of a purged task", err, store.ErrNotFound)
	}
	if got := deadLetterIDs(t, s, store.DeadLetterFilter{TaskID: "gone"}); len(got) != 0 {
		t.Errorf("dead letters of a purged task = %v, want none", got)
	}
	if got := deadLetterIDs(t, s, store.DeadLetterFilter{}); !slices.Equal(got, []string{"dl-kept", "dl2-kept"}) {
		t.Errorf("dead letters = %v, want the kept task's [dl-kept dl2-kept]", got)
	}
	checkListed(t, s, "kept")
	if got := listIDs(t, s, store.Filter{After: "gone"}); len(got) != 0 {
		t.Errorf("ListTasks after a purged task = %v, want nothing (an unknown ID)", got)
	}
	// The other task keeps everything.
	if got := getTransitions(t, s, "kept"); len(got) != 7 {
		t.Errorf("transitions of the kept task = %d, want 7", len(got))
	}
	if got := getSteps(t, s, "kept"); len(got) != 2 || got[0].State != "completed" {
		t.Errorf("steps of the kept task = %+v, want a completed and b", got)
	}
}

func testPurgeFreesKey(t *testing.T, s store.Store) {
	p := purger(t, s)
	ctx := context.Background()
	task := sampleTask("t1")
	task.IdempotencyKey = "order-42"
	if _, _, err := s.CreateTask(ctx, task, sampleSteps("a")); err != nil {
		t.Fatal(err)
	}
	apply(t, s, store.Change{TaskID: "t1", From: "pending", To: "complete", At: at(2)})
	purge(t, p, store.PurgeFilter{States: []string{"complete"}}, 1)
	task.ID = "t2"
	if id, created, err := s.CreateTask(ctx, task, sampleSteps("a")); err != nil || !created || id != "t2" {
		t.Fatalf("CreateTask with a purged task's key = %q, %v, %v; want t2, true, nil", id, created, err)
	}
	task.ID, task.IdempotencyKey = "t1", ""
	if id, created, err := s.CreateTask(ctx, task, sampleSteps("x")); err != nil || !created || id != "t1" {
		t.Fatalf("CreateTask with a purged task's ID = %q, %v, %v; want t1, true, nil", id, created, err)
	}
	checkSteps(t, getSteps(t, s, "t1"), withTaskID("t1", sampleSteps("x")))
	if got := getTransitions(t, s, "t1"); len(got) != 0 {
		t.Errorf("transitions of a new task with a purged task's ID = %+v, want none", got)
	}
	checkListed(t, s, "t2", "t1")
}

func testPurgeKeepsOutbox(t *testing.T, s store.Store) {
	p := purger(t, s)
	ob := outboxer(t, s)
	for _, id := range []string{"t1", "t2", "t3"} {
		create(t, s, id, "a")
	}
	apply(t, s, store.Change{TaskID: "t1", From: "pending", To: "complete", At: at(2)},
		withOutbox(store.Change{TaskID: "t2", From: "pending", To: "complete", At: at(2)}, "o2"),
		store.Change{TaskID: "t3", From: "pending", To: "complete", At: at(2)})
	// t3 is kept as the newest; t2, the next newest, counts among the
	// kept no more than any other: it is kept for its entry.
	purge(t, p, store.PurgeFilter{States: []string{"complete"}, KeepNewest: 1}, 1)
	checkListed(t, s, "t2", "t3")
	purge(t, p, store.PurgeFilter{States: []string{"complete"}}, 1)
	checkListed(t, s, "t2")
	checkOutbox(t, pending(t, ob, "", 0), []store.OutboxEntry{outboxEntry("o2", "t2", at(2))})
	if err := ob.AckOutbox(context.Background(), []string{"o2"}); err != nil {
		t.Fatal(err)
	}
	purge(t, p, store.PurgeFilter{States: []string{"complete"}}, 1)
	checkListed(t, s)
}

func testPurgeRefuses(t *testing.T, s store.Store) {
	p := purger(t, s)
	finished(t, s, "t1", "complete", 2)
	if n, err := p.PurgeTasks(context.Background(), store.PurgeFilter{}); err == nil || n != 0 {
		t.Errorf("PurgeTasks with no States = %d, %v; want 0 and an error", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := p.PurgeTasks(ctx, store.PurgeFilter{States: []string{"complete"}})
	if !errors.Is(err, context.Canceled) || n != 0 {
		t.Errorf("PurgeTasks with a done context = %d, %v; want 0 and context.Canceled", n, err)
	}
	checkListed(t, s, "t1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	n, err = p.PurgeTasks(context.Background(), store.PurgeFilter{States: []string{"complete"}})
	if !errors.Is(err, store.ErrClosed) || n != 0 {
		t.Errorf("PurgeTasks after Close = %d, %v; want 0 and ErrClosed", n, err)
	}
}

func testPurgeRacesApply(t *testing.T, s store.Store) {
	p := purger(t, s)
	const n = 40
	for i := range n {
		finished(t, s, fmt.Sprintf("t%02d", i), "error", 2)
	}
	var purged int
	errs := parallel(n+1, func(i int) error {
		if i == n {
			var err error
			purged, err = p.PurgeTasks(context.Background(), store.PurgeFilter{States: []string{"error"}})
			return err
		}
		err := s.Apply(context.Background(), []store.Change{retried(fmt.Sprintf("t%02d", i), at(3), "ops", "")})
		if errors.Is(err, store.ErrConflict) {
			return nil // purged first
		}
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	left := listIDs(t, s, store.Filter{})
	for _, id := range left {
		if task := getTask(t, s, id); task.State != "running" {
			t.Errorf("task %s left in %q: neither purged nor retried", id, task.State)
		}
	}
	if purged+len(left) != n {
		t.Errorf("purged %d and %d left, want %d in all", purged, len(left), n)
	}
}

func testPurgeMany(t *testing.T, s store.Store) {
	p := purger(t, s)
	const n = 250
	errs := parallel(n, func(i int) error {
		id := fmt.Sprintf("t%03d", i)
		if _, _, err := s.CreateTask(context.Background(), sampleTask(id), sampleSteps("a", "b")); err != nil {
			return err
		}
		return s.Apply(context.Background(), []store.Change{{TaskID: id, From: "pending", To: "complete", At: at(2)}})
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	create(t, s, "last", "a")
	purge(t, p, store.PurgeFilter{States: []string{"complete"}, Limit: n - 50}, n-50)
	purge(t, p, store.PurgeFilter{States: []string{"complete"}}, 50)
	checkListed(t, s, "last")
}
