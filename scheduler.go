package tasker

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotasker/tasker/store"
	"go.uber.org/zap"
)

// scheduler owns the engine's goroutines, time and readiness. Each running
// task is a run holding, per step, a counter of unfinished dependencies;
// completing a step decrements its dependents' counters and queues those at
// zero, so readiness costs O(steps + edges) per task. A bounded pool of
// workers takes queued steps, claims them through the store, calls their
// handlers and records the outcome. A step waiting for a retry is a timer,
// holding no worker and no goroutine.
type scheduler struct {
	st          store.Store
	log         *zap.Logger
	handlers    *registry
	workers     int
	stepTimeout time.Duration // for steps without timeout_seconds; 0 = none

	handlerCtx context.Context // parent of every handler's context
	cancel     context.CancelCauseFunc

	mu       sync.Mutex
	cond     sync.Cond
	queue    []work // ready work, FIFO from head
	head     int
	runs     map[string]*run
	timers   map[*timer]struct{}
	started  chan struct{} // closed by start
	stopped  chan struct{} // closed by stop
	stopping bool
	halt     atomic.Bool    // stopping, readable without mu
	wg       sync.WaitGroup // the workers
}

// work is one item for a worker: a step of a run to attempt, or, when step
// is negative, a run to begin.
type work struct {
	r    *run
	step int
	// claimed, when set, is the claim of step already written along with
	// the task's start: the attempt goes straight to the handler.
	claimed *store.Change
}

// timer is a pending time.AfterFunc the scheduler stops when it stops.
type timer struct{ t *time.Timer }

func newScheduler(st store.Store, log *zap.Logger, h *registry, cfg Config) *scheduler {
	s := &scheduler{
		st: st, log: log, handlers: h, workers: cfg.Workers, stepTimeout: cfg.StepTimeout,
		runs:    make(map[string]*run),
		timers:  make(map[*timer]struct{}),
		started: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	s.cond.L = &s.mu
	s.handlerCtx, s.cancel = context.WithCancelCause(context.Background())
	return s
}

// start launches the workers and resumes the recovered runs. They are
// adopted before Wait callers are let through, so none of them misses its
// run.
func (s *scheduler) start(recovered []*run) {
	for _, r := range recovered {
		s.adopt(r)
	}
	s.mu.Lock()
	close(s.started)
	s.mu.Unlock()
	for _, r := range recovered {
		s.resume(r)
	}
	s.wg.Add(s.workers)
	for range s.workers {
		go s.work()
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
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// adopt makes r one of the runs this engine drives: it gets a context for
// its handlers and, if it has a deadline, a timer.
func (s *scheduler) adopt(r *run) {
	r.ctx, r.cancel = context.WithCancelCause(s.handlerCtx)
	s.mu.Lock()
	s.runs[r.id] = r
	s.mu.Unlock()
	if !r.deadline.IsZero() {
		r.deadlineTimer = s.after(time.Until(r.deadline), func() { s.expire(r) })
	}
}

// add adopts a newly submitted run and queues its beginning.
func (s *scheduler) add(r *run) {
	s.adopt(r)
	r.mu.Lock()
	r.inflight++
	r.mu.Unlock()
	s.push(work{r: r, step: -1})
}

// lookup returns the run of a task this engine is driving, or nil.
func (s *scheduler) lookup(id string) *run {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[id]
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

// next blocks until work is queued, or returns false once stopping.
func (s *scheduler) next() (work, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.stopping && s.head == len(s.queue) {
		s.cond.Wait()
	}
	if s.stopping {
		return work{}, false
	}
	w := s.queue[s.head]
	s.queue[s.head] = work{}
	s.head++
	if s.head == len(s.queue) {
		s.queue, s.head = s.queue[:0], 0
	}
	return w, true
}

// worker is one of the pool's goroutines; it reuses its change buffer for
// the one-change writes of the hot path (stores do not keep what they are
// given).
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
			ready = s.begin(wk, w.r)
		} else {
			ready = s.attempt(wk, w.r, w.step, w.claimed)
		}
	}
}

// apply durably writes changes through the worker's buffer.
func (wk *worker) apply(changes ...store.Change) error {
	wk.buf = append(wk.buf[:0], changes...)
	err := wk.s.apply(wk.buf)
	clear(wk.buf)
	return err
}

// begin moves a new task to in_progress and returns its root steps. The
// first root's claim is written with the task's start, one write for two.
func (s *scheduler) begin(wk *worker, r *run) []work {
	r.mu.Lock()
	if r.cancelled != nil { // a cancelled task goes from pending to cancelled
		return s.settle(r, nil)
	}
	now := time.Now()
	start := store.Change{TaskID: r.id, From: string(TaskPending), To: string(TaskInProgress), At: now}
	first := r.ready()
	r.inflight -= len(first) // counted again below, once claimed or queued
	var claim store.Change
	if len(first) > 0 {
		claim = r.claimLocked(first[0].step, now)
	}
	r.mu.Unlock()
	var err error
	if len(first) > 0 {
		err = wk.apply(start, claim)
	} else {
		err = wk.apply(start)
	}
	if err != nil {
		s.abandon(r, err)
		return nil
	}
	r.mu.Lock()
	r.state = TaskInProgress
	var ready []work
	if len(first) > 0 {
		r.record(first[0].step, claim)
		r.inflight++
		ready = append(ready, work{r: r, step: first[0].step, claimed: &claim})
	}
	return s.settle(r, append(ready, r.ready()...))
}

// attempt claims step i of r (unless claimed is its claim, already
// written), runs its handler and records the outcome. It returns the steps
// that became ready.
func (s *scheduler) attempt(wk *worker, r *run, i int, claimed *store.Change) []work {
	ch, ok := s.claimed(wk, r, i, claimed)
	if !ok {
		return nil
	}
	spec := r.specs[i]
	timeout := spec.Timeout
	if timeout == 0 {
		timeout = s.stepTimeout
	}
	sc := &StepContext{run: r, spec: spec, attempt: ch.Attempt}
	out := invoke(r.ctx, s.handlers.lookup(spec.Callable), sc, timeout, func(out outcome) {
		// The handler called runtime.Goexit: this worker exits once its
		// deferred calls are done. Record the outcome as any other, queue
		// what it made ready and start a replacement before wg.Done runs.
		s.push(s.recordOutcome(wk, r, i, ch, out)...)
		s.wg.Add(1)
		go s.work()
	})
	if out.interrupted {
		return nil // left in progress, for recovery
	}
	return s.recordOutcome(wk, r, i, ch, out)
}

// recordOutcome durably records the outcome of attempt ch of step i of r,
// and returns the steps that became ready.
func (s *scheduler) recordOutcome(wk *worker, r *run, i int, ch store.Change, out outcome) []work {
	rec, delay := r.outcomeChange(i, ch.Attempt, ch.Error, out, time.Now())
	f := r.follow(i, rec)
	var err error
	if f.extra.TaskID != "" {
		err = wk.apply(rec, f.extra)
	} else {
		err = wk.apply(rec)
	}
	if err != nil {
		s.abandon(r, err)
		return nil
	}
	r.mu.Lock()
	ready := r.record(i, rec)
	switch {
	case f.last:
		r.inflight--
		r.mu.Unlock()
		s.release(r, nil)
		return nil
	case f.next >= 0:
		ready = r.continueWith(f.next, f.extra, ready)
	case rec.To == string(StepWaitingForRetry):
		s.after(delay, func() { s.push(r.requeue(i)...) })
	}
	return s.settle(r, ready)
}

// claimed returns the claim of step i: the one given, already written, or a
// new one, written now. It returns false when the step must not run (the
// task halted, and the worker's turn is settled, or the write failed).
func (s *scheduler) claimed(wk *worker, r *run, i int, given *store.Change) (store.Change, bool) {
	if given != nil {
		return *given, true
	}
	ch, ok := r.claim(i, time.Now())
	if !ok {
		r.mu.Lock()
		s.settle(r, nil)
		return ch, false
	}
	if err := wk.apply(ch); err != nil {
		s.abandon(r, err)
		return ch, false
	}
	r.mu.Lock()
	r.record(i, ch)
	r.mu.Unlock()
	return ch, true
}

// settle finishes a worker's turn on r, called with r.mu held, which it
// releases: the work item is no longer in flight, and the task ends if that
// was the last thing it waited for. It returns ready, for the caller to run
// or queue.
func (s *scheduler) settle(r *run, ready []work) []work {
	r.inflight--
	final, ok := r.finish()
	r.mu.Unlock()
	if ok {
		s.end(r, final)
	}
	return ready
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

// expire ends a task whose deadline passed: nothing new starts, running
// handlers are cancelled and fail as timeouts, and the task ends in error.
func (s *scheduler) expire(r *run) {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return
	}
	r.failed, r.expired = true, true
	final, ok := r.finish()
	r.mu.Unlock()
	r.cancel(ErrTaskDeadline)
	if ok {
		s.end(r, final)
	}
}

// end durably records a task's final changes and releases it.
func (s *scheduler) end(r *run, final []store.Change) {
	if err := s.apply(final); err != nil {
		s.abandon(r, err)
		return
	}
	s.release(r, nil)
}

// abandon stops driving a task whose change the store refused: the store
// keeps what it has, and a restart resumes from there.
func (s *scheduler) abandon(r *run, err error) {
	s.log.Error("tasker: abandoning task after store error", zap.String("task", r.id), zap.Error(err))
	r.mu.Lock()
	r.ended = true
	r.mu.Unlock()
	s.release(r, err)
}

func (s *scheduler) release(r *run, err error) {
	s.mu.Lock()
	if s.runs[r.id] == r {
		delete(s.runs, r.id)
	}
	s.mu.Unlock()
	s.cancelTimer(r.deadlineTimer)
	r.cancel(errTaskEnded)
	r.err = err
	close(r.done)
}

// apply writes changes durably, after checking each against the transition
// table. The write outlives the caller: it is not cancelled when the engine
// stops, so a finished step is never lost.
func (s *scheduler) apply(changes []store.Change) error {
	for _, ch := range changes {
		if err := checkChange(ch); err != nil {
			return err
		}
	}
	return s.st.Apply(context.Background(), changes)
}

func checkChange(ch store.Change) error {
	if ch.Step == "" {
		return checkTask(ch.TaskID, TaskState(ch.From), TaskState(ch.To))
	}
	return checkStep(ch.Step, StepState(ch.From), StepState(ch.To))
}

// resume queues what an adopted run rebuilt from the store can do now: its
// beginning, ready steps at once, steps waiting for a retry when their time
// comes; a run that is already over ends.
func (s *scheduler) resume(r *run) {
	r.mu.Lock()
	if r.state == TaskPending {
		r.inflight++
		r.mu.Unlock()
		s.push(work{r: r, step: -1})
		return
	}
	ready := r.ready()
	if !r.halted() {
		for i := range r.steps {
			if st := r.steps[i]; st.state == StepWaitingForRetry {
				s.after(time.Until(st.nextAt), func() { s.push(r.requeue(i)...) })
			}
		}
	}
	r.inflight++ // settle's decrement balances it
	s.push(s.settle(r, ready)...)
}

// jitter returns d shortened at random, per JitterFraction.
func jitter(d time.Duration) time.Duration { return Jittered(d, rand.Float64()) }
