package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gotasker/tasker/store"
)

var leaseCases = []testCase{
	{"CreateLeased leases the new task to its owner, token 1, until ttl from now; Task, ListTasks and Snapshot show the Owner", testCreateLeased},
	{"CreateLeased with a known idempotency key stores nothing, returns a zero Lease and leaves the lease as it was", testCreateLeasedKey},
	{"AcquireTasks leases free tasks in the given states, oldest first, at most limit, each token one more", testAcquireOrder},
	{"a task whose lease has not expired is acquired by no one, its holder included", testAcquireHeld},
	{"a task whose lease expired is acquired by another owner, its token one more", testAcquireExpired},
	{"concurrent AcquireTasks never hand one task to two callers", testAcquireConcurrent},
	{"a change fenced by an old token wraps ErrLeaseLost and ErrConflict and applies nothing of its batch", testFenceLost},
	{"a change fenced by the task's token applies; a change with Lease 0 is not fenced", testFenceHeld},
	{"RenewLeases extends its owner's leases, expired ones nobody took included, and returns only those", testRenewLeases},
	{"ReleaseTasks frees the tasks at once; a lease whose token is no longer the task's is ignored", testReleaseTasks},
	{"an empty owner is rejected, and nothing is leased or stored", testLeaseEmptyOwner},
	{"lease calls with a done context or after Close return the context's error or wrap ErrClosed", testLeaseLifecycle},
	{"Wake (if the store has it) signals after a CreateTask and after a ReleaseTasks, on one channel", testWake},
}

// Lease fixtures: a ttl that does not run out during a test, one that runs
// out at once, and how long a test waits for something the store's clock
// or its listener brings.
const (
	longTTL  = time.Hour
	shortTTL = 50 * time.Millisecond
	patience = 5 * time.Second
)

// clockSkew is how far the store's clock (a database server's) may be from
// the test's when the suite checks a lease's Expires.
const clockSkew = time.Minute

const ownerA, ownerB, ownerC = "engine-a", "engine-b", "engine-c"

// leaser returns s as a Leaser, or skips the test for a backend that is
// not one.
func leaser(t *testing.T, s store.Store) store.Leaser {
	t.Helper()
	l, ok := s.(store.Leaser)
	if !ok {
		t.Skip("the store is not a store.Leaser")
	}
	return l
}

// createLeased stores a sample task id in state, with steps named by
// names, leased to owner for ttl, and returns its lease.
func createLeased(t *testing.T, l store.Leaser, id, state, owner string, ttl time.Duration, names ...string) store.Lease {
	t.Helper()
	task := sampleTask(id)
	task.State = state
	got, created, lease, err := l.CreateLeased(context.Background(), task, sampleSteps(names...), owner, ttl)
	if err != nil || !created || got != id {
		t.Fatalf("CreateLeased(%q) = %q, %v, %v; want %q, true, nil", id, got, created, err, id)
	}
	if lease.TaskID != id || lease.Owner != owner || lease.Token != 1 {
		t.Fatalf("CreateLeased(%q) lease = %+v, want task %q, owner %q, token 1", id, lease, id, owner)
	}
	return lease
}

// createInState stores a sample task id in state, without a lease.
func createInState(t *testing.T, s store.Store, id, state string) {
	t.Helper()
	task := sampleTask(id)
	task.State = state
	if _, _, err := s.CreateTask(context.Background(), task, sampleSteps("a")); err != nil {
		t.Fatalf("CreateTask(%q): %v", id, err)
	}
}

// acquire calls AcquireTasks and returns the leases sorted by TaskID.
func acquire(t *testing.T, l store.Leaser, owner string, states []string, limit int, ttl time.Duration) []store.Lease {
	t.Helper()
	got, err := l.AcquireTasks(context.Background(), owner, states, limit, ttl)
	if err != nil {
		t.Fatalf("AcquireTasks(%q, %v, %d): %v", owner, states, limit, err)
	}
	return sortLeases(got)
}

// acquireOnceExpired calls AcquireTasks for owner until it returns the
// lease of task id, whose lease is about to expire, or patience runs out.
func acquireOnceExpired(t *testing.T, l store.Leaser, owner, id string, states []string) store.Lease {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		for _, lease := range acquire(t, l, owner, states, 100, longTTL) {
			if lease.TaskID == id {
				return lease
			}
			t.Fatalf("AcquireTasks(%q) took %+v, want only %q", owner, lease, id)
		}
		if time.Now().After(deadline) {
			t.Fatalf("AcquireTasks(%q) did not take %q, whose lease expires after %v, within %v", owner, id, shortTTL, patience)
		}
		time.Sleep(5 * time.Millisecond) // a poll, bounded by the deadline
	}
}

func renew(t *testing.T, l store.Leaser, owner string, ttl time.Duration) []store.Lease {
	t.Helper()
	got, err := l.RenewLeases(context.Background(), owner, ttl)
	if err != nil {
		t.Fatalf("RenewLeases(%q): %v", owner, err)
	}
	return sortLeases(got)
}

func release(t *testing.T, l store.Leaser, leases ...store.Lease) {
	t.Helper()
	if err := l.ReleaseTasks(context.Background(), leases); err != nil {
		t.Fatalf("ReleaseTasks(%+v): %v", leases, err)
	}
}

func sortLeases(ls []store.Lease) []store.Lease {
	slices.SortFunc(ls, func(a, b store.Lease) int { return cmp.Compare(a.TaskID, b.TaskID) })
	return ls
}

// checkLeases compares leases by TaskID, Owner and Token; Expires, from the
// store's clock, is checked by checkExpires.
func checkLeases(t *testing.T, what string, got []store.Lease, want ...store.Lease) {
	t.Helper()
	eq := func(a, b store.Lease) bool { return a.TaskID == b.TaskID && a.Owner == b.Owner && a.Token == b.Token }
	if !slices.EqualFunc(got, want, eq) {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
}

// checkExpires checks that a lease granted between before and after for
// ttl expires ttl after then, give or take clockSkew, and is in UTC.
func checkExpires(t *testing.T, l store.Lease, ttl time.Duration, before, after time.Time) {
	t.Helper()
	lo, hi := before.Add(ttl-clockSkew), after.Add(ttl+clockSkew)
	if l.Expires.Before(lo) || l.Expires.After(hi) || l.Expires.Location() != time.UTC {
		t.Errorf("lease of %q expires %v, want a UTC time within %v of %v from now", l.TaskID, l.Expires, clockSkew, ttl)
	}
}

func ownerOf(t *testing.T, s store.Store, id string) string {
	t.Helper()
	return getTask(t, s, id).Owner
}

func testCreateLeased(t *testing.T, s store.Store) {
	l := leaser(t, s)
	before := time.Now()
	lease := createLeased(t, l, "t1", "pending", ownerA, longTTL, "a", "b")
	checkExpires(t, lease, longTTL, before, time.Now())
	// The task is stored as CreateTask stores it, with its owner.
	checkTask(t, getTask(t, s, "t1"), sampleTask("t1"))
	checkSteps(t, getSteps(t, s, "t1"), withTaskID("t1", sampleSteps("a", "b")))
	if got := ownerOf(t, s, "t1"); got != ownerA {
		t.Errorf("Task.Owner = %q, want %q", got, ownerA)
	}
	tasks, err := s.ListTasks(context.Background(), store.Filter{})
	if err != nil || len(tasks) != 1 || tasks[0].Owner != ownerA {
		t.Errorf("ListTasks = %+v, %v; want t1 owned by %q", tasks, err, ownerA)
	}
	if sn, ok := s.(store.Snapshotter); ok {
		snap, err := sn.Snapshot(context.Background(), "t1")
		if err != nil || snap.Task.Owner != ownerA {
			t.Errorf("Snapshot().Task.Owner = %q, %v; want %q", snap.Task.Owner, err, ownerA)
		}
	}
	// CreateTask ignores an Owner given: the task is free.
	task := sampleTask("t2")
	task.Owner = ownerB
	if _, _, err := s.CreateTask(context.Background(), task, nil); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	if got := ownerOf(t, s, "t2"); got != "" {
		t.Errorf("Owner of a task CreateTask stored with Owner %q = %q, want \"\"", ownerB, got)
	}
	checkLeases(t, "AcquireTasks", acquire(t, l, ownerC, []string{"pending"}, 10, longTTL),
		store.Lease{TaskID: "t2", Owner: ownerC, Token: 1})
}

func testCreateLeasedKey(t *testing.T, s store.Store) {
	l := leaser(t, s)
	ctx := context.Background()
	first := sampleTask("t1")
	first.IdempotencyKey = "k1"
	if _, _, _, err := l.CreateLeased(ctx, first, sampleSteps("a"), ownerA, longTTL); err != nil {
		t.Fatalf("CreateLeased: %v", err)
	}
	free := sampleTask("t2")
	free.IdempotencyKey = "k2"
	if _, _, err := s.CreateTask(ctx, free, sampleSteps("a")); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	for _, tc := range []struct{ key, existing, owner string }{{"k1", "t1", ownerA}, {"k2", "t2", ""}} {
		again := sampleTask("t3")
		again.IdempotencyKey = tc.key
		id, created, lease, err := l.CreateLeased(ctx, again, sampleSteps("x"), ownerB, longTTL)
		if err != nil || created || id != tc.existing || lease != (store.Lease{}) {
			t.Errorf("CreateLeased with key %q = %q, %v, %+v, %v; want %q, false, a zero Lease, nil",
				tc.key, id, created, lease, err, tc.existing)
		}
		if got := ownerOf(t, s, tc.existing); got != tc.owner {
			t.Errorf("Owner of %q after a deduplicated CreateLeased = %q, want %q", tc.existing, got, tc.owner)
		}
	}
	_, err := s.Task(ctx, "t3")
	wantErr(t, "Task of the deduplicated task", err, store.ErrNotFound)
	checkLeases(t, "AcquireTasks", acquire(t, l, ownerC, []string{"pending"}, 10, longTTL),
		store.Lease{TaskID: "t2", Owner: ownerC, Token: 1})
}

func testAcquireOrder(t *testing.T, s store.Store) {
	l := leaser(t, s)
	for _, tc := range []struct{ id, state string }{{"t3", "pending"}, {"t1", "running"}, {"t2", "pending"}, {"t4", "complete"}} {
		createInState(t, s, tc.id, tc.state)
	}
	live := []string{"pending", "running"}
	before := time.Now()
	got := acquire(t, l, ownerA, live, 2, longTTL)
	checkLeases(t, "AcquireTasks(limit 2)", got, store.Lease{TaskID: "t1", Owner: ownerA, Token: 1},
		store.Lease{TaskID: "t3", Owner: ownerA, Token: 1})
	for _, lease := range got {
		checkExpires(t, lease, longTTL, before, time.Now())
	}
	checkLeases(t, "AcquireTasks(limit 10)", acquire(t, l, ownerA, live, 10, longTTL),
		store.Lease{TaskID: "t2", Owner: ownerA, Token: 1})
	checkLeases(t, "AcquireTasks(limit 0)", acquire(t, l, ownerB, []string{"complete"}, 0, longTTL))
	checkLeases(t, "AcquireTasks(no states)", acquire(t, l, ownerB, nil, 10, longTTL))
	checkLeases(t, "AcquireTasks(complete)", acquire(t, l, ownerB, []string{"complete", "nope"}, 10, longTTL),
		store.Lease{TaskID: "t4", Owner: ownerB, Token: 1})
	for id, want := range map[string]string{"t1": ownerA, "t2": ownerA, "t3": ownerA, "t4": ownerB} {
		if got := ownerOf(t, s, id); got != want {
			t.Errorf("Owner of %q = %q, want %q", id, got, want)
		}
	}
}

func testAcquireHeld(t *testing.T, s store.Store) {
	l := leaser(t, s)
	createLeased(t, l, "t1", "pending", ownerA, longTTL, "a")
	checkLeases(t, "AcquireTasks by another owner", acquire(t, l, ownerB, []string{"pending"}, 10, longTTL))
	checkLeases(t, "AcquireTasks by the holder", acquire(t, l, ownerA, []string{"pending"}, 10, longTTL))
	if got := ownerOf(t, s, "t1"); got != ownerA {
		t.Errorf("Owner = %q, want %q", got, ownerA)
	}
}

func testAcquireExpired(t *testing.T, s store.Store) {
	l := leaser(t, s)
	createLeased(t, l, "t1", "pending", ownerA, shortTTL, "a")
	got := acquireOnceExpired(t, l, ownerB, "t1", []string{"pending"})
	checkLeases(t, "the lease taken over", []store.Lease{got}, store.Lease{TaskID: "t1", Owner: ownerB, Token: 2})
	if owner := ownerOf(t, s, "t1"); owner != ownerB {
		t.Errorf("Owner = %q, want %q", owner, ownerB)
	}
	// The former holder's renewal no longer finds it.
	checkLeases(t, "RenewLeases by the former holder", renew(t, l, ownerA, longTTL))
}

func testAcquireConcurrent(t *testing.T, s store.Store) {
	l := leaser(t, s)
	const tasks = 48
	for i := range tasks {
		createInState(t, s, fmt.Sprintf("t%02d", i), "pending")
	}
	got := make([][]store.Lease, goroutines)
	errs := parallel(goroutines, func(g int) error {
		for {
			ls, err := l.AcquireTasks(context.Background(), fmt.Sprint("owner-", g), []string{"pending"}, 3, longTTL)
			if err != nil || len(ls) == 0 {
				return err
			}
			got[g] = append(got[g], ls...)
		}
	})
	for g, err := range errs {
		if err != nil {
			t.Fatalf("acquirer %d: %v", g, err)
		}
	}
	// What the acquirers skipped while others held it is left for a last call.
	all := append(slices.Concat(got...), acquire(t, l, ownerC, []string{"pending"}, tasks, longTTL)...)
	seen := map[string]bool{}
	for _, lease := range all {
		if seen[lease.TaskID] {
			t.Errorf("task %q was leased twice", lease.TaskID)
		}
		seen[lease.TaskID] = true
		if lease.Token != 1 {
			t.Errorf("lease %+v: token %d, want 1", lease, lease.Token)
		}
		if owner := ownerOf(t, s, lease.TaskID); owner != lease.Owner {
			t.Errorf("Owner of %q = %q, want %q, who acquired it", lease.TaskID, owner, lease.Owner)
		}
	}
	if len(seen) != tasks {
		t.Errorf("%d tasks were leased, want all %d", len(seen), tasks)
	}
}

// fenced returns c fenced with token.
func fenced(c store.Change, token int64) store.Change {
	c.Lease = token
	return c
}

// takenOver stores t1 with steps a and b, leased to ownerA, and returns
// ownerB's lease after taking it over, token 2.
func takenOver(t *testing.T, l store.Leaser) store.Lease {
	t.Helper()
	createLeased(t, l, "t1", "pending", ownerA, shortTTL, "a", "b")
	return acquireOnceExpired(t, l, ownerB, "t1", []string{"pending"})
}

func testFenceLost(t *testing.T, s store.Store) {
	l := leaser(t, s)
	takenOver(t, l)
	createInState(t, s, "t2", "pending")
	for name, batch := range map[string][]store.Change{
		"a step change":                 {claim("t2", "a", 1, at(2)), fenced(claim("t1", "a", 1, at(2)), 1)},
		"a task change":                 {fenced(store.Change{TaskID: "t1", From: "pending", To: "running", At: at(2)}, 1)},
		"a step's creation":             {fenced(created("t1", "c", 2), 1)},
		"a change whose state is stale": {fenced(claim("t1", "a", 3, at(2)), 1)},
		"an unknown token":              {fenced(claim("t1", "a", 1, at(2)), 7)},
		"a fenced change after others":  {claim("t1", "b", 1, at(2)), fenced(claim("t1", "a", 1, at(2)), 1)},
	} {
		err := s.Apply(context.Background(), batch)
		if !errors.Is(err, store.ErrLeaseLost) || !errors.Is(err, store.ErrConflict) {
			t.Errorf("Apply of %s fenced by an old token: %v, want an error wrapping ErrLeaseLost and ErrConflict", name, err)
		}
	}
	checkTask(t, getTask(t, s, "t1"), sampleTask("t1"))
	checkSteps(t, getSteps(t, s, "t1"), withTaskID("t1", sampleSteps("a", "b")))
	checkSteps(t, getSteps(t, s, "t2"), withTaskID("t2", sampleSteps("a")))
	for _, id := range []string{"t1", "t2"} {
		if trs := getTransitions(t, s, id); len(trs) != 0 {
			t.Errorf("Transitions(%q) = %+v, want none", id, trs)
		}
	}
}

func testFenceHeld(t *testing.T, s store.Store) {
	l := leaser(t, s)
	lease := takenOver(t, l)
	changes := []store.Change{
		fenced(store.Change{TaskID: "t1", From: "pending", To: "running", At: at(2)}, lease.Token),
		fenced(claim("t1", "a", 1, at(3)), lease.Token),
		fenced(created("t1", "c", 2), lease.Token),
		claim("t1", "b", 1, at(4)), // unfenced
	}
	apply(t, s, changes[:2]...)
	apply(t, s, changes[2:]...)
	checkTransitions(t, getTransitions(t, s, "t1"), transitionsOf(changes...))
	// A conflict on a fenced change is a conflict, not a lost lease.
	err := s.Apply(context.Background(), []store.Change{fenced(claim("t1", "a", 1, at(5)), lease.Token)})
	if !errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("Apply of a stale claim fenced by the held token: %v, want ErrConflict, not ErrLeaseLost", err)
	}
}

func testRenewLeases(t *testing.T, s store.Store) {
	l := leaser(t, s)
	// tE and tS expire together, tE first; ownerB takes tS once it has.
	expired := createLeased(t, l, "tE", "running", ownerA, shortTTL, "a")
	createLeased(t, l, "tS", "pending", ownerA, shortTTL, "a")
	createLeased(t, l, "tH", "pending", ownerA, longTTL, "a")
	createLeased(t, l, "tB", "pending", ownerB, longTTL, "a")
	acquireOnceExpired(t, l, ownerB, "tS", []string{"pending"})

	before := time.Now()
	got := renew(t, l, ownerA, longTTL)
	checkLeases(t, "RenewLeases", got, store.Lease{TaskID: "tE", Owner: ownerA, Token: 1},
		store.Lease{TaskID: "tH", Owner: ownerA, Token: 1})
	for _, lease := range got {
		checkExpires(t, lease, longTTL, before, time.Now())
	}
	if !got[0].Expires.After(expired.Expires) {
		t.Errorf("renewed lease of tE expires %v, want after its first expiry %v", got[0].Expires, expired.Expires)
	}
	checkLeases(t, "AcquireTasks of the renewed lease", acquire(t, l, ownerB, []string{"running"}, 10, longTTL))
	checkLeases(t, "RenewLeases by an owner of nothing", renew(t, l, ownerC, longTTL))
	if got := ownerOf(t, s, "tS"); got != ownerB {
		t.Errorf("Owner of tS = %q, want %q", got, ownerB)
	}
}

func testReleaseTasks(t *testing.T, s store.Store) {
	l := leaser(t, s)
	first := createLeased(t, l, "t1", "pending", ownerA, longTTL, "a")
	createLeased(t, l, "t2", "pending", ownerA, longTTL, "a")
	release(t, l, first)
	release(t, l)
	if got := ownerOf(t, s, "t1"); got != "" {
		t.Errorf("Owner of a released task = %q, want \"\"", got)
	}
	// Until it is acquired again its token is unchanged: the releaser's
	// fenced change still applies.
	apply(t, s, fenced(claim("t1", "a", 1, at(2)), first.Token))
	checkLeases(t, "AcquireTasks after a release", acquire(t, l, ownerB, []string{"pending"}, 10, longTTL),
		store.Lease{TaskID: "t1", Owner: ownerB, Token: 2})
	release(t, l, first, store.Lease{TaskID: "nope", Owner: ownerA, Token: 1}) // stale and unknown: ignored
	if got := ownerOf(t, s, "t1"); got != ownerB {
		t.Errorf("Owner after releasing a stale lease = %q, want %q", got, ownerB)
	}
	checkLeases(t, "AcquireTasks after releasing a stale lease", acquire(t, l, ownerC, []string{"pending"}, 10, longTTL))
	checkLeases(t, "RenewLeases by the releaser", renew(t, l, ownerA, longTTL), store.Lease{TaskID: "t2", Owner: ownerA, Token: 1})
}

func testLeaseEmptyOwner(t *testing.T, s store.Store) {
	l := leaser(t, s)
	ctx := context.Background()
	createInState(t, s, "t1", "pending")
	if _, _, _, err := l.CreateLeased(ctx, sampleTask("t2"), nil, "", longTTL); err == nil {
		t.Error("CreateLeased with an empty owner succeeded")
	}
	if _, err := s.Task(ctx, "t2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Task of a task CreateLeased refused: %v, want ErrNotFound", err)
	}
	if ls, err := l.AcquireTasks(ctx, "", []string{"pending"}, 10, longTTL); err == nil {
		t.Errorf("AcquireTasks with an empty owner = %+v, want an error", ls)
	}
	if ls, err := l.RenewLeases(ctx, "", longTTL); err == nil {
		t.Errorf("RenewLeases with an empty owner = %+v, want an error", ls)
	}
	checkLeases(t, "AcquireTasks", acquire(t, l, ownerA, []string{"pending"}, 10, longTTL),
		store.Lease{TaskID: "t1", Owner: ownerA, Token: 1})
}

// leaseCalls makes one call of every Leaser method, by name.
func leaseCalls(ctx context.Context, l store.Leaser, lease store.Lease) map[string]func() error {
	return map[string]func() error{
		"CreateLeased": func() error {
			_, _, _, err := l.CreateLeased(ctx, sampleTask("t2"), nil, ownerA, longTTL)
			return err
		},
		"AcquireTasks": func() error { _, err := l.AcquireTasks(ctx, ownerB, []string{"pending"}, 10, longTTL); return err },
		"RenewLeases":  func() error { _, err := l.RenewLeases(ctx, ownerA, longTTL); return err },
		"ReleaseTasks": func() error { return l.ReleaseTasks(ctx, []store.Lease{lease}) },
	}
}

func testLeaseLifecycle(t *testing.T, s store.Store) {
	l := leaser(t, s)
	lease := createLeased(t, l, "t1", "pending", ownerA, shortTTL, "a")
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for name, call := range leaseCalls(done, l, lease) {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want an error wrapping context.Canceled", name, err)
		}
	}
	if _, err := s.Task(context.Background(), "t2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Task of a task CreateLeased with a done context: %v, want ErrNotFound", err)
	}
	if got := ownerOf(t, s, "t1"); got != ownerA {
		t.Errorf("Owner after calls with a done context = %q, want %q", got, ownerA)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, call := range leaseCalls(context.Background(), l, lease) {
		if err := call(); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want an error wrapping ErrClosed", name, err)
		}
	}
}

// waitWake reports whether ch receives within d.
func waitWake(ch <-chan struct{}, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		return false
	}
}

// drain empties ch of a signal already sent.
func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func testWake(t *testing.T, s store.Store) {
	l := leaser(t, s)
	w, ok := s.(store.Waker)
	if !ok {
		t.Skip("the store is not a store.Waker")
	}
	ch := w.Wake()
	if w.Wake() != ch {
		t.Error("Wake returned two channels")
	}
	// A backend whose signals come through a listener may miss what comes
	// before it listens, and may signal once it does: the first round only
	// waits for a signal of any kind.
	deadline := time.Now().Add(patience)
	for i := 0; ; i++ {
		createInState(t, s, fmt.Sprint("ready-", i), "pending")
		if waitWake(ch, 100*time.Millisecond) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no signal on Wake within %v of CreateTask", patience)
		}
	}
	drain(ch)
	createInState(t, s, "t1", "pending")
	if !waitWake(ch, patience) {
		t.Fatalf("no signal on Wake within %v of CreateTask", patience)
	}
	lease := createLeased(t, l, "t2", "pending", ownerA, longTTL, "a")
	drain(ch)
	release(t, l, lease)
	if !waitWake(ch, patience) {
		t.Fatalf("no signal on Wake within %v of ReleaseTasks", patience)
	}
}

func testDurableLeases(t *testing.T, s store.Store, reopen func(store.Store) store.Store) {
	lease := createLeased(t, leaser(t, s), "t1", "pending", ownerA, longTTL, "a")
	createInState(t, s, "t2", "pending")
	s = reopen(s)
	l := leaser(t, s)
	if got := ownerOf(t, s, "t1"); got != ownerA {
		t.Errorf("Owner after reopen = %q, want %q", got, ownerA)
	}
	checkLeases(t, "AcquireTasks after reopen", acquire(t, l, ownerB, []string{"pending"}, 10, longTTL),
		store.Lease{TaskID: "t2", Owner: ownerB, Token: 1})
	apply(t, s, fenced(claim("t1", "a", 1, at(2)), lease.Token))
	release(t, l, lease)
	s = reopen(s)
	checkLeases(t, "AcquireTasks of a released task after reopen", acquire(t, leaser(t, s), ownerC, []string{"pending"}, 10, longTTL),
		store.Lease{TaskID: "t1", Owner: ownerC, Token: 2})
}
