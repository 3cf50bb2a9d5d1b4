package tasker_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
)

// stall is a shared store as an engine that lags sees it: while renewOff,
// its renewals fail, and while acquireOff its acquisitions do (its lease
// loop is stalled, as a starved process's is); the first write with a
// change matching held waits until gate is closed (it was in flight while
// the lease changed hands). granted receives the leases its acquisitions
// grant.
type stall struct {
	*memory.Shared
	renewOff, acquireOff atomic.Bool
	granted              chan store.Lease
	renewed              chan struct{} // receives a value when a renewal succeeded, if there is room

	held     func(store.Change) bool // nil: no write waits
	gate     chan struct{}
	inFlight chan struct{} // closed when the write held reached the store
	applied  chan error    // then receives what the store said to it
	once     sync.Once
}

var errStalled = errors.New("stall: the engine's lease loop is stalled")

// newStall returns a stall on a new shared store.
func newStall() *stall { return stallOn(memory.NewShared()) }

// stallOn returns a stall on shared, which engines may reach another way.
func stallOn(shared *memory.Shared) *stall {
	return &stall{Shared: shared, granted: make(chan store.Lease, 64), renewed: make(chan struct{}, 1), gate: make(chan struct{}),
		inFlight: make(chan struct{}), applied: make(chan error, 1)}
}

func (s *stall) RenewLeases(ctx context.Context, owner string, states []string, ttl time.Duration) ([]store.Lease, error) {
	if s.renewOff.Load() {
		return nil, errStalled
	}
	leases, err := s.Shared.RenewLeases(ctx, owner, states, ttl)
	if err == nil {
		select {
		case s.renewed <- struct{}{}:
		default:
		}
	}
	return leases, err
}

func (s *stall) AcquireTasks(ctx context.Context, owner string, states []string, limit int, ttl time.Duration) ([]store.Lease, error) {
	if s.acquireOff.Load() {
		return nil, errStalled
	}
	leases, err := s.Shared.AcquireTasks(ctx, owner, states, limit, ttl)
	for _, l := range leases {
		select {
		case s.granted <- l:
		default:
		}
	}
	return leases, err
}

func (s *stall) Apply(ctx context.Context, changes []store.Change) error {
	first := false
	if s.held != nil && slices.ContainsFunc(changes, s.held) {
		s.once.Do(func() { first = true })
	}
	if !first {
		return s.Shared.Apply(ctx, changes)
	}
	close(s.inFlight)
	<-s.gate
	err := s.Shared.Apply(ctx, changes)
	s.applied <- err
	return err
}

// TestSharedWaitThroughLostLease: an engine whose lease loop stalled loses
// its task to another engine; a Wait on the first engine is not ended by
// the first engine giving its run up (its late outcome is refused, its
// lease is lost): it goes on reading the task, which the other engine
// finishes, and returns it complete.
func TestSharedWaitThroughLostLease(t *testing.T) {
	st := newStall()
	defer st.Close()
	rs := newRuns()
	atD, relA, relB := make(chan string, 8), make(chan struct{}), make(chan struct{})
	hold := func(release chan struct{}) func(context.Context, *tasker.StepContext) error {
		return func(ctx context.Context, sc *tasker.StepContext) error {
			if sc.StepName() == "d" {
				atD <- sc.TaskID()
				<-release
			}
			return nil
		}
	}
	const ttl = 200 * time.Millisecond
	a := startShared(t, st, "A", ttl, 4, rs.handler("A", hold(relA)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := a.Submit(ctx, tasker.SubmitRequest{Namespace: "shared", Name: "diamond"})
	if err != nil {
		t.Fatal(err)
	}
	<-atD // A runs d
	st.renewOff.Store(true)
	st.acquireOff.Store(true)
	b := startShared(t, st.Shared, "B", ttl, 4, rs.handler("B", hold(relB)))
	<-atD // B took the task over once A's lease expired, and runs d again
	waited := make(chan error, 1)
	go func() {
		task, err := a.WaitOutcome(ctx, id) // on A, whose run still drives the task
		if err == nil && task.State != tasker.TaskComplete {
			err = errors.New("task " + string(task.State))
		}
		waited <- err
	}()
	close(relA) // A's outcome of d is refused: A gives its run up
	close(relB)
	if task, err := b.WaitOutcome(ctx, id); err != nil || task.State != tasker.TaskComplete {
		t.Fatalf("on B: %s, want complete", stateOf(task, err))
	}
	if err := <-waited; err != nil {
		t.Errorf("WaitOutcome on A, the engine that lost the task: %v; want the task complete", err)
	}
	st.renewOff.Store(false)
	st.acquireOff.Store(false)
}

// TestSharedOwnLeaseBack: an engine whose renewals failed until its lease
// expired acquires its own task back (a new token) while its run of it is
// in flight. The write that run had in flight, stamped with the old token,
// is refused; the task is not left undriven for that: the engine drives it
// afresh under its new lease, as any engine taking a task over does (the
// attempt cut short is recorded as interrupted and retried), and completes
// it. Nothing the old run still does is recorded.
func TestSharedOwnLeaseBack(t *testing.T) {
	st := newStall()
	defer st.Close()
	st.held = func(ch store.Change) bool { return ch.Step == "d" && ch.To == string(tasker.StepComplete) }
	rs := newRuns()
	const ttl = 200 * time.Millisecond
	a := startShared(t, st, "A", ttl, 4, rs.handler("A", nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := a.Submit(ctx, tasker.SubmitRequest{Namespace: "shared", Name: "diamond"})
	if err != nil {
		t.Fatal(err)
	}
	<-st.inFlight // d's outcome is on its way to the store, with token 1
	st.renewOff.Store(true)
	awaitGrant(t, ctx, st, id, "A") // A's own lease expired; it takes the task back
	st.renewOff.Store(false)
	close(st.gate) // the write in flight reaches the store, with the old token
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	task := pollTask(t, pctx, st, id)
	if task.State != string(tasker.TaskComplete) {
		t.Fatalf("task is %s, want complete: the engine that got its own lease back left it undriven", task.State)
	}
	trail, err := st.Transitions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trail {
		if tr.Step == "d" && tr.Attempt == 1 && tr.To != string(tasker.StepInProgress) &&
			(tr.To != string(tasker.StepWaitingForRetry) || tr.Error == nil || tr.Error.Code != tasker.CodeInterrupted) {
			t.Errorf("d's first attempt ended %s → %s (%+v); want it recorded as interrupted, its late outcome refused", tr.From, tr.To, tr.Error)
		}
	}
}

// TestSharedLateOutcomeFenced: an engine that learns at a renewal that its
// task went to another engine lets its run go; the outcome of an attempt
// that run still had in hand, which its handler returned all the same, is
// refused by the store (its lease's token is stale), even though this
// engine no longer holds any lease on the task to stamp it with: what the
// other engine records of the attempt (interrupted) stands, and the other
// engine's own attempt is the step's result.
func TestSharedLateOutcomeFenced(t *testing.T) {
	shared := memory.NewShared()
	defer shared.Close()
	sa, sb := stallOn(shared), stallOn(shared)
	sa.held = func(ch store.Change) bool { return ch.Step == "d" && ch.To == string(tasker.StepComplete) }
	close(sa.gate) // A's outcome of d goes through at once; sa.applied tells what the store said
	sb.held = func(ch store.Change) bool { return ch.Step == "d" && ch.To == string(tasker.StepWaitingForRetry) }
	rs := newRuns()
	atD := make(chan string, 1)
	finishAnyway := func(ctx context.Context, sc *tasker.StepContext) error {
		if sc.StepName() == "d" && sc.Attempt() == 1 {
			atD <- sc.TaskID()
			<-ctx.Done() // the run is let go; the handler returns its result all the same
		}
		return nil
	}
	const ttl = 200 * time.Millisecond
	a := startShared(t, sa, "A", ttl, 4, rs.handler("A", finishAnyway))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := a.Submit(ctx, tasker.SubmitRequest{Namespace: "shared", Name: "diamond"})
	if err != nil {
		t.Fatal(err)
	}
	<-atD
	sa.renewOff.Store(true) // A's lease expires
	sa.acquireOff.Store(true)
	b := startShared(t, sb, "B", ttl, 4, rs.handler("B", nil))
	<-sb.inFlight            // B took the task over; its record of A's attempt as interrupted is held on its way
	sa.renewOff.Store(false) // A's next renewal finds the task gone, and lets its run go
	if err := <-sa.applied; !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("A's late outcome of d: the store said %v, want store.ErrLeaseLost", err)
	}
	close(sb.gate)
	task, err := b.WaitOutcome(ctx, id)
	if err != nil || task.State != tasker.TaskComplete {
		t.Fatalf("on B: %s, want complete", stateOf(task, err))
	}
	if d := task.Step("d"); d.Attempts != 2 || string(d.Result) != `{"by":"B"}` {
		t.Errorf("d after %d attempts with %s, want B's second", d.Attempts, d.Result)
	}
	sa.acquireOff.Store(false)
}

// TestSharedNoWakeAfterLetGo: a parent task's step waits for its sub-task,
// both run by engine A; A's lease loop stalls, engine B takes the parent
// over (not the sub-task: it has room for one task), and A, renewing again,
// lets its run of the parent go and keeps the sub-task. When the sub-task
// ends on A, the parent's run that A let go is not woken: its waiting
// attempt's handler is not called again on A (B has recorded that attempt
// interrupted, and runs the step itself).
func TestSharedNoWakeAfterLetGo(t *testing.T) {
	shared := memory.NewShared()
	defer shared.Close()
	sa, sb := stallOn(shared), stallOn(shared)
	atIssue, release := make(chan struct{}, 1), make(chan struct{})
	w := &refundWorld{issue: func(context.Context, int32) (any, error) {
		atIssue <- struct{}{}
		<-release
		return map[string]any{"refunded": 42}, nil
	}}
	var callsOnA atomic.Int32 // calls of the delegating step's first attempt on A
	handlers := func(engine string) map[string]tasker.StepHandler {
		hs := w.handlers()
		delegate := hs["cs.delegate"]
		hs["cs.delegate"] = tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
			if engine == "A" && sc.Attempt() == 1 {
				callsOnA.Add(1)
			}
			return delegate.Call(ctx, sc)
		})
		return hs
	}
	const ttl = 200 * time.Millisecond
	tmpls := []*tasker.Template{mustParse(t, refundParentYAML), mustParse(t, refundChildYAML)}
	a := startEngineWith(t, sa, &tasker.Config{Owner: "A", LeaseTTL: ttl, Workers: 4}, handlers("A"), tmpls...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := a.Submit(ctx, tasker.SubmitRequest{Namespace: "customer_success", Name: "process_refund", Context: map[string]any{"amount": 42}})
	if err != nil {
		t.Fatal(err)
	}
	<-atIssue // the parent's step waits for the sub-task, which runs on A
	sa.renewOff.Store(true)
	sa.acquireOff.Store(true)
	b := startEngineWith(t, sb, &tasker.Config{Owner: "B", LeaseTTL: ttl, Workers: 1}, handlers("B"), tmpls...)
	awaitGrant(t, ctx, sb, id, "B") // the oldest task whose lease expired: the parent
	sa.renewOff.Store(false)
	for range 2 { // a renewal after A's first since: A has let its run of the parent go
		select {
		case <-sa.renewed:
		case <-ctx.Done():
			t.Fatal("A never renewed")
		}
	}
	close(release) // the sub-task ends, on A
	task, err := b.WaitOutcome(ctx, id)
	if err != nil || task.State != tasker.TaskComplete {
		t.Fatalf("parent on B: %s, want complete", stateOf(task, err))
	}
	if d := task.Step("delegate_refund"); d.Attempts != 2 {
		t.Errorf("delegate_refund after %d attempts, want 2: A's, interrupted, and B's", d.Attempts)
	}
	if n := callsOnA.Load(); n != 1 {
		t.Errorf("A called the waiting attempt's handler %d times, want once: it woke the run it had let go", n)
	}
	sa.acquireOff.Store(false)
}

// awaitGrant waits until st grants owner a lease on task id.
func awaitGrant(t *testing.T, ctx context.Context, st *stall, id, owner string) {
	t.Helper()
	for {
		select {
		case l := <-st.granted:
			if l.TaskID == id && l.Owner == owner {
				return
			}
		case <-ctx.Done():
			t.Fatalf("%s was never granted a lease on task %s", owner, id)
		}
	}
}

// pollTask reads task id from st until it ended, or fails t once ctx ends.
func pollTask(t *testing.T, ctx context.Context, st store.Store, id string) store.Task {
	t.Helper()
	for {
		task, err := st.Task(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if tasker.TaskState(task.State).Ended() {
			return task
		}
		select {
		case <-ctx.Done():
			t.Fatalf("task %s still %s when the test's time ran out", id, task.State)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
