package tasker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotasker/tasker/store"
	"go.uber.org/zap"
)

// scheduler does the engine's I/O and keeps its time: it owns the workers,
// the queue of ready work and the timers, writes what the runs decide and
// acts on it once it is durable. What runs next is each run's decision
// (run.go); the scheduler only carries out the effects a run returns. A
// bounded pool of workers takes queued work: a task to begin, or a step to
// claim, hand to its handler and record. A step waiting for a retry is a
// timer, holding no worker and no goroutine.
type scheduler struct {
	st          store.Store
	eng         *Engine // for the sub-tasks steps start
	log         *zap.Logger
	handlers    *registry
	workers     int
	stepTimeout time.Duration    // for steps without timeout_seconds; 0 = none
	staleEvery  time.Duration    // how often staleness is checked
	clock       func() time.Time // the staleness check's clock

	retryDelay func(time.Duration) time.Duration                                       // Config.RetryDelay; nil: none
	onAttempt  func(context.Context, *StepContext) (context.Context, func(AttemptEnd)) // Config.Attempt; nil: none

	handlerCtx context.Context // parent of every handler's context
	cancel     context.CancelCauseFunc

	// adoptMu serializes the adoption of runs, so that a task is read from
	// the store and adopted by one caller at a time, never twice.
	adoptMu sync.Mutex

	mu       sync.Mutex
	cond     sync.Cond
	queue    []work // ready work, FIFO from head
	head     int
	runs     map[string]*run
	recent   recentRuns        // the runs that ended last, for WaitOutcome
	waiters  map[string]waiter // by sub-task ID: the parent step waiting for it
	timers   map[*timer]struct{}
	started  chan struct{} // closed by start
	stopped  chan struct{} // closed by stop
	stopping bool
	halt     atomic.Bool    // stopping, readable without mu
	wg       sync.WaitGroup // the workers
	// idle counts the workers waiting for work (changed under mu, read
	// without it): how many steps an outcome or a beginning may claim
	// ahead for others to run at once (see spare).
	idle atomic.Int32

	// fence returns the fencing token to stamp on the changes of a task,
	// on a store many engines share (shared.token); nil on any other.
	fence func(taskID string) int64
	// freed is told when a run ends, so that an engine of a shared store
	// with free tasks waiting takes one (shared.freed); nil on any other.
	freed func()

	events hub           // the subscriptions, told of every change once it is durable
	domain *domainEvents // the domain events' publishers and outbox dispatcher
}

// work is one item for a worker: a step of a run to attempt, or, when step
// is negative, a run to begin.
type work struct {
	r    *run
	step int
	// claimed, when set, is the claim of step already written along with
	// another change: the attempt goes straight to the handler.
	claimed *store.Change
}

// timer is a pending time.AfterFunc the scheduler stops when it stops.
type timer struct{ t *time.Timer }

func newScheduler(st store.Store, log *zap.Logger, h *registry, cfg Config) *scheduler {
	s := &scheduler{
		st: st, log: log, handlers: h, workers: cfg.Workers, stepTimeout: cfg.StepTimeout,
		staleEvery: cfg.StalenessInterval, clock: cfg.Clock, retryDelay: cfg.RetryDelay, onAttempt: cfg.Attempt,
		runs:    make(map[string]*run),
		waiters: make(map[string]waiter),
		timers:  make(map[*timer]struct{}),
		started: make(chan struct{}),
		stopped: make(chan struct{}),
		domain:  newDomainEvents(st, log),
	}
	s.cond.L = &s.mu
	s.handlerCtx, s.cancel = context.WithCancelCause(context.Background())
	return s
}

// start lets Wait callers through and launches the workers. The runs of
// recovered tasks are adopted before it, so that no Wait misses its run.
func (s *scheduler) start() {
	close(s.started)
	s.wg.Add(s.workers + 1)
	for range s.workers {
		go s.work()
	}
	go s.watchStaleness(s.staleEvery, s.clock)
	if s.domain.ob != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.domain.dispatch(s.handlerCtx, s.stopped)
		}()
	}
}

// isStarted reports whether start has run.
func (s *scheduler) isStarted() bool {
	select {
	case <-s.started:
		return true
	default:
		return false
	}
}

// stop stops taking work and timers, waits for running steps until ctx
// ends or at once when cancelNow, then cancels their contexts with
// ErrEngineStopping. It reports whether every worker returned.
func (s *scheduler) stop(ctx context.Context, cancelNow bool) bool {
	s.mu.Lock()
	if !s.stopping {
		s.stopping = true
		s.halt.Store(true)
		for t := range s.timers {
			t.t.Stop()
		}
		clear(s.timers)
		close(s.stopped)
		s.cond.Broadcast()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	if cancelNow {
		s.cancel(ErrEngineStopping)
	}
	select {
	case <-done:
		s.cancel(ErrEngineStopping)
		return true
	case <-ctx.Done():
		s.cancel(ErrEngineStopping)
	}
	// Handlers that honour their context return now.
	select {
	case <-done:
		return true
	case <-time.After(stopGrace):
		return false
	}
}

// stopGrace is how long stop waits for handlers to return once it has
// cancelled their contexts, before it reports that some still run.
const stopGrace = 100 * time.Millisecond

// add drives task id, just stored, and queues its beginning.
func (s *scheduler) add(task *store.Task, t *Template) {
	r := s.leased(newRun(s.handlerCtx, task, t))
	s.adoptMu.Lock()
	defer s.adoptMu.Unlock()
	if s.drive(r) {
		r.startTurn()
		s.push(work{r: r, step: -1})
	}
}

// restorer builds the run of a stored task, with the changes that settle
// the attempts a stop or crash cut short, or returns a nil run when the
// task needs no driving.
type restorer func(parent context.Context) (*run, []store.Change, error)

// adopt drives task id with the run that restore builds from the store,
// unless a run of this engine drives it already. It reports whether one
// does now.
func (s *scheduler) adopt(id string, restore restorer) (bool, error) {
	s.adoptMu.Lock()
	defer s.adoptMu.Unlock()
	if s.lookup(id) != nil {
		return true, nil
	}
	r, cut, err := restore(s.handlerCtx)
	if err != nil || r == nil {
		return false, err
	}
	if err := s.applyFor(s.leased(r), cut); err != nil {
		return false, err
	}
	s.events.wrote(runMeta(r), cut, time.Time{})
	s.drive(r)
	eff := r.resume(time.Now())
	for _, w := range eff.waiting {
		s.after(time.Until(w.at), func() { s.push(r.requeue(w.step)...) })
	}
	s.push(s.carry(r, eff.effects)...)
	return true, nil
}

// leased gives r, not shared yet, the fencing token of this engine's lease
// on its task, on a store many engines share.
func (s *scheduler) leased(r *run) *run {
	if s.fence == nil {
		return r
	}
	return r.withLease(s.fence(r.id))
}

// drive makes r one of the runs this engine drives, unless one drives its
// task already, and times its deadline. Called with adoptMu held.
func (s *scheduler) drive(r *run) bool {
	s.mu.Lock()
	if _, ok := s.runs[r.id]; ok {
		s.mu.Unlock()
		return false
	}
	s.runs[r.id] = r
	s.mu.Unlock()
	if !r.deadline.IsZero() {
		r.watch(s.after(time.Until(r.deadline), func() { s.carry(r, r.expire(time.Now())) }))
	}
	return true
}

// driven returns the runs this engine drives now.
func (s *scheduler) driven() []*run {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Values(s.runs))
}

// lookup returns the run of a task this engine is driving, or nil.
// load returns how many tasks this engine drives now.
func (s *scheduler) load() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.runs)
}

func (s *scheduler) lookup(id string) *run {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[id]
}

// await waits until no run of this engine drives task id, and returns the
// run that did, or nil when none did. It returns ErrEngineStopped if the
// engine stops first, and an error when the engine gave the task up.
func (s *scheduler) await(ctx context.Context, id string) (*run, error) {
	s.mu.Lock()
	r := s.runs[id]
	if r == nil {
		r = s.recent.find(id)
	}
	s.mu.Unlock()
	if r == nil {
		return nil, nil
	}
	select {
	case <-r.done:
	case <-s.stopped:
		return r, ErrEngineStopped
	case <-ctx.Done():
		return r, ctx.Err()
	}
	if err := r.abandoned(); err != nil {
		return r, err
	}
	return r, nil
}

// awaitEnding waits for the run of task id to finish writing its end, if
// its end is decided, so that an operator's changes never race with the
// engine's last ones. It reports whether a run still drives the task.
func (s *scheduler) awaitEnding(ctx context.Context, id string) (bool, error) {
	r := s.lookup(id)
	if r == nil {
		return false, nil
	}
	if !r.isEnded() {
		return true, nil
	}
	select {
	case <-r.done:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// cancelTask cancels the run of task id on a's behalf. It reports false
// when no run of this engine drives the task, or its end is decided.
func (s *scheduler) cancelTask(id string, a Action) bool {
	r := s.lookup(id)
	if r == nil {
		return false
	}
	children := r.children()
	eff, ok := r.cancelBy(a, time.Now())
	if ok {
		s.carry(r, eff)
		for _, c := range children {
			s.cancelTask(c, Action{By: "task:" + id, Reason: "its parent was cancelled"})
		}
	}
	return ok
}

func (s *scheduler) push(items ...work) {
	if len(items) == 0 {
		return
	}
	s.mu.Lock()
	s.queue = append(s.queue, items...)
	s.mu.Unlock()
	if len(items) == 1 {
		s.cond.Signal()
	} else {
		s.cond.Broadcast()
	}
}

// spare returns how many steps a turn may claim, besides the one its worker
// goes on with, in the write that makes them ready: as many as workers
// wait idle, less the work queued for them, so that every step claimed
// ahead starts at once rather than waiting, claimed, in the queue.
func (s *scheduler) spare() int {
	n := int(s.idle.Load())
	if n <= 0 {
		return 0
	}
	return max(n-s.queued(), 0)
}

// minCompact is how many consumed items the queue holds before next moves
// the live ones down (see next).
const minCompact = 256

// queued returns how many items of work wait for a worker.
func (s *scheduler) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) - s.head
}

// next blocks until work is queued, or returns false once stopping.
func (s *scheduler) next() (work, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.stopping && s.head == len(s.queue) {
		s.idle.Add(1)
		s.cond.Wait()
		s.idle.Add(-1)
	}
	if s.stopping {
		return work{}, false
	}
	w := s.queue[s.head]
	s.queue[s.head] = work{}
	s.head++
	switch {
	case s.head == len(s.queue):
		s.queue, s.head = s.queue[:0], 0
	case s.head >= minCompact && 2*s.head >= len(s.queue):
		// A queue that never empties would otherwise grow by every item
		// ever pushed: append keeps the consumed prefix. Moving the live
		// half down costs no more than the pushes that filled it.
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:])
		s.queue, s.head = s.queue[:n], 0
	}
	return w, true
}

// worker is one of the pool's goroutines; it reuses its change buffer for
// the writes of the hot path (stores do not keep what they are given).
type worker struct {
	s   *scheduler
	buf []store.Change
}

// work runs queued work until the scheduler stops. When an item makes
// steps ready, the worker goes on with the first of them itself and queues
// the rest: a task's next step skips the queue, and tasks already running
// go before new ones.
func (s *scheduler) work() {
	defer s.wg.Done()
	wk := &worker{s: s, buf: make([]store.Change, 0, 2)}
	var w work
	var ready []work
	for {
		if len(ready) > 0 && !s.halt.Load() {
			w = ready[0]
			s.push(ready[1:]...)
		} else {
			var ok bool
			if w, ok = s.next(); !ok {
				return
			}
		}
		if w.step < 0 {
			ready = s.carry(w.r, w.r.begin(time.Now(), wk.buf, s.spare()))
		} else {
			ready = wk.attempt(w)
		}
	}
}

// attempt claims a step (unless w is claimed already), runs its handler
// and records the outcome. It returns the steps that became ready.
func (wk *worker) attempt(w work) []work {
	s, r, i := wk.s, w.r, w.step
	var claim store.Change
	if w.claimed != nil {
		claim = *w.claimed
	} else {
		ch, ok := r.claim(i, time.Now())
		if !ok {
			return s.carry(r, r.settle(time.Now()))
		}
		wk.buf = append(wk.buf[:0], ch)
		if !s.write(r, wk.buf, time.Time{}) {
			return nil
		}
		claim = ch
	}
	spec := r.spec(i)
	timeout := spec.Timeout
	if timeout == 0 {
		timeout = s.stepTimeout
	}
	sc := &StepContext{run: r, spec: spec, attempt: claim.Attempt, sched: s, started: claim.At}
	ctx, end := r.ctx, (func(AttemptEnd))(nil)
	if s.onAttempt != nil {
		ctx, end = s.onAttempt(ctx, sc)
	}
	out := invoke(ctx, s.handlers.lookup(spec.Callable), sc, timeout, func(out outcome) {
		// The handler called runtime.Goexit: this goroutine ends once its
		// deferred calls return. Record the outcome here and start a
		// replacement, counted before this worker's wg.Done.
		s.push(wk.record(sc, claim, out, end)...)
		s.wg.Add(1)
		go s.work()
	})
	return wk.record(sc, claim, out, end)
}

// record carries out the outcome out of attempt claim of sc's step: the
// instrumentation's end hears of it, and it is written and acted on, unless
// the engine stopped under it or it waits for a sub-task.
func (wk *worker) record(sc *StepContext, claim store.Change, out outcome, end func(AttemptEnd)) []work {
	s, r, i := wk.s, sc.run, sc.spec.index
	if end != nil {
		end(attemptEnd(out))
	}
	switch {
	case out.interrupted:
		return nil // left in progress, for recovery
	case out.parked:
		return s.carry(r, r.park(i, claim))
	}
	if len(sc.spec.events) > 0 {
		out.payloads, out.outbox = sc.eventPayloads(), s.domain.ob != nil
	}
	spare := 0
	if len(sc.spec.dependents) > 1 { // with one, its worker goes on with it: none to claim ahead
		spare = s.spare()
	}
	return s.carryOutcome(r, r.outcome(i, claim, out, time.Now(), wk.buf, spare), claim.At)
}

// saveCheckpoint durably writes checkpoint raw of attempt of step i of r,
// for its handler.
func (s *scheduler) saveCheckpoint(r *run, i, attempt int, raw json.RawMessage) error {
	if err := s.note(r, i, attempt, raw, "checkpoint"); err != nil {
		return fmt.Errorf("tasker: save checkpoint of %s: %w", r.spec(i).Name, err)
	}
	r.checkpointed(i, raw)
	return nil
}

// note durably writes, in the audit trail of step i of r during attempt,
// an in_progress → in_progress change with reason and, when not nil,
// checkpoint raw: what a running attempt records without ending.
func (s *scheduler) note(r *run, i, attempt int, raw json.RawMessage, reason string) error {
	ch, ok := r.checkpointChange(i, attempt, raw, time.Now())
	if !ok {
		return fmt.Errorf("attempt %d is not running", attempt)
	}
	ch.Reason = reason
	return s.applyFor(r, []store.Change{ch})
}

// carry carries out eff, the effects of an event on r: it writes eff's
// changes and, once they are durable, releases r if they end its task,
// times a retry, and settles the turn that ended. It returns the work that
// became ready, for the caller to run or queue.
func (s *scheduler) carry(r *run, eff effects) []work { return s.carryOutcome(r, eff, time.Time{}) }

// carryOutcome is carry for the effects of an attempt's outcome, the
// attempt claimed at started (zero for other effects), so that the
// outcome's event tells how long the attempt ran.
func (s *scheduler) carryOutcome(r *run, eff effects, started time.Time) []work {
	if !s.write(r, eff.writes, started) {
		return nil
	}
	clear(eff.writes) // the worker's buffer: drop the results it holds
	if eff.events != nil {
		s.domain.written(s.handlerCtx, eff.events)
	}
	if eff.ends {
		s.release(r, nil)
		return nil
	}
	if eff.retry >= 0 {
		s.retry(r, eff.retry, eff.delay)
	}
	if eff.release == 0 && !eff.settle {
		return eff.work
	}
	work, end := r.stored(eff.release, eff.settle, eff.work, time.Now())
	if end.ends {
		s.carry(r, end)
	}
	return work
}

// write makes changes durable. A write the store refuses for a reason that
// may pass (a full disk, an I/O error) is retried with backoff, logged,
// until it succeeds or the engine stops; one that cannot succeed (a
// conflict, a closed store) abandons the task, and so does the engine
// stopping first: the store keeps what it has, and a restart resumes from
// there. It reports whether the changes are durable; once they are, their
// events are published, started being when the attempt whose outcome they
// hold was claimed (zero when none).
func (s *scheduler) write(r *run, changes []store.Change, started time.Time) bool {
	if len(changes) == 0 {
		return true
	}
	delay := writeRetryMin
	for {
		err := s.applyFor(r, changes)
		if err == nil {
			if s.events.on() {
				s.events.wrote(runMeta(r), changes, started)
			}
			return true
		}
		if permanent(err) || s.handlerCtx.Err() != nil {
			s.abandon(r, err)
			return false
		}
		s.log.Warn("tasker: store write failed; retrying", zap.String("task", r.id),
			zap.Duration("in", delay), zap.Error(err))
		select {
		case <-time.After(delay):
		case <-s.handlerCtx.Done():
		}
		delay = min(2*delay, writeRetryMax)
	}
}

// The delays between retries of a failed store write.
const (
	writeRetryMin = 10 * time.Millisecond
	writeRetryMax = 5 * time.Second
)

// permanent reports whether a store error cannot pass by itself.
func permanent(err error) bool {
	return errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrClosed) ||
		errors.Is(err, ErrIllegalTransition)
}

// retry requeues step i of r after delay d. Config.RetryDelay, when set,
// maps d; a mapped delay that is not positive queues the step at once,
// unless the engine is stopping, so that instant retries keep their place
// in the queue (a timer of zero would race the work the worker goes on
// with).
func (s *scheduler) retry(r *run, i int, d time.Duration) {
	if ce := s.log.Check(zap.DebugLevel, "tasker: step retry scheduled"); ce != nil {
		ce.Write(zap.String("task", r.id), zap.String("step", r.spec(i).Name), zap.Duration("in", d))
	}
	requeue := func() { s.push(r.requeue(i)...) }
	if s.retryDelay != nil {
		if d = s.retryDelay(d); d <= 0 {
			if !s.halt.Load() {
				requeue()
			}
			return
		}
	}
	s.after(d, requeue)
}

// after runs f after d, unless the scheduler stops first. f runs on its
// own goroutine and must not block.
func (s *scheduler) after(d time.Duration, f func()) *timer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil
	}
	t := &timer{}
	t.t = time.AfterFunc(d, func() {
		s.mu.Lock()
		_, live := s.timers[t]
		delete(s.timers, t)
		s.mu.Unlock()
		if live {
			f()
		}
	})
	s.timers[t] = struct{}{}
	return t
}

// cancelTimer stops t; a nil t is ignored.
func (s *scheduler) cancelTimer(t *timer) {
	if t == nil {
		return
	}
	s.mu.Lock()
	delete(s.timers, t)
	s.mu.Unlock()
	t.t.Stop()
}

// abandon stops driving a task whose change the store refused for good.
func (s *scheduler) abandon(r *run, err error) {
	s.log.Error("tasker: abandoning task after store error", zap.String("task", r.id), zap.Error(err))
	s.release(r, err)
}

// release stops driving r's task; err says why, when it did not end. A
// parent step waiting for the task, a sub-task, is woken, unless this
// engine has let the parent's run go too (its lease was lost): the engine
// now driving the parent resumes that step (as watchRemote does not wake
// an ended parent either).
func (s *scheduler) release(r *run, err error) {
	s.mu.Lock()
	if s.runs[r.id] == r {
		delete(s.runs, r.id)
	}
	if err == nil {
		s.recent.add(r)
	}
	w, waited := s.waiters[r.id]
	delete(s.waiters, r.id)
	s.mu.Unlock()
	s.cancelTimer(r.release(err))
	if s.freed != nil {
		s.freed()
	}
	if waited && !w.r.isEnded() {
		s.push(w.r.wake(w.step)...)
	}
}

// waiter is a parent step waiting for its sub-task.
type waiter struct {
	r    *run
	step int
}

// watch makes step of parent wait for sub-task child, which a run of this
// engine drives, and reports true; false when no run drives child (it has
// ended, or is not driven here).
func (s *scheduler) watch(parent *run, step int, child string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.runs[child]; !ok {
		return false
	}
	s.waiters[child] = waiter{parent, step}
	return true
}

// unwatch forgets a wait that watch registered.
func (s *scheduler) unwatch(child string) {
	s.mu.Lock()
	delete(s.waiters, child)
	s.mu.Unlock()
}

// apply writes changes durably, after checking each against the transition
// table. The write outlives the caller: it is not cancelled when the engine
// stops, so a finished step is never lost.
func (s *scheduler) apply(changes []store.Change) error { return s.applyFor(nil, changes) }

// applyFor is apply for the changes of run r (nil for none). On a store
// many engines share, a change of r's task carries the fencing token of the
// lease r was built under (run.lease), so that a run that outlived its
// lease is refused (store.ErrLeaseLost) even once this engine forgot the
// lease or holds a newer one; any other change carries the token of this
// engine's lease on its task, 0 when it holds none (an operator's change
// of a task another engine runs).
func (s *scheduler) applyFor(r *run, changes []store.Change) error {
	if len(changes) == 0 {
		return nil
	}
	for i, ch := range changes {
		if err := checkChange(ch); err != nil {
			return err
		}
		switch {
		case s.fence == nil:
		case r != nil && ch.TaskID == r.id:
			changes[i].Lease = r.leaseToken()
		default:
			changes[i].Lease = s.fence(ch.TaskID)
		}
	}
	return s.st.Apply(context.Background(), changes)
}

// applyTo is apply for the changes of stored task rec that no run drives
// (an operator's, or recovery setting a task aside), with their events.
func (s *scheduler) applyTo(rec store.Task, changes []store.Change) error {
	if err := s.apply(changes); err != nil {
		return err
	}
	s.events.wrote(recordMeta(rec), changes, time.Time{})
	return nil
}

func checkChange(ch store.Change) error {
	if ch.Step == "" {
		return checkTask(ch.TaskID, TaskState(ch.From), TaskState(ch.To))
	}
	return checkStep(ch.Step, StepState(ch.From), StepState(ch.To))
}

// recentRunCount is how many ended runs the scheduler keeps, so that a
// WaitOutcome called just after its task ended still answers from memory.
const recentRunCount = 256

// recentRuns is a ring of the runs that ended last, by task ID.
type recentRuns struct {
	ring [recentRunCount]*run
	next int
	byID map[string]*run
}

func (rr *recentRuns) add(r *run) {
	if rr.byID == nil {
		rr.byID = make(map[string]*run, recentRunCount)
	}
	if old := rr.ring[rr.next]; old != nil && rr.byID[old.id] == old {
		delete(rr.byID, old.id)
	}
	rr.ring[rr.next], rr.byID[r.id] = r, r
	rr.next = (rr.next + 1) % recentRunCount
}

func (rr *recentRuns) find(id string) *run { return rr.byID[id] }
