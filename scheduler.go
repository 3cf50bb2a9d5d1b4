package tasker

import (
	"context"
	"math/rand/v2"
	"sync"
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
	st       store.Store
	log      *zap.Logger
	handlers *registry
	workers  int

	handlerCtx context.Context // parent of every handler's context
	cancel     context.CancelCauseFunc

	mu       sync.Mutex
	cond     sync.Cond
	queue    []work // ready work, FIFO from head
	head     int
	runs     map[string]*run
	timers   map[*retryTimer]struct{}
	started  chan struct{} // closed by start
	stopped  chan struct{} // closed by stop
	stopping bool
	wg       sync.WaitGroup // the workers
}

// work is one item for a worker: a step of a run to attempt, or, when step
// is negative, a run to begin.
type work struct {
	r    *run
	step int
}

type retryTimer struct{ t *time.Timer }

func newScheduler(st store.Store, log *zap.Logger, h *registry, workers int) *scheduler {
	s := &scheduler{
		st: st, log: log, handlers: h, workers: workers,
		runs:    make(map[string]*run),
		timers:  make(map[*retryTimer]struct{}),
		started: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	s.cond.L = &s.mu
	s.handlerCtx, s.cancel = context.WithCancelCause(context.Background())
	return s
}

// start launches the workers and queues the recovered runs.
func (s *scheduler) start(recovered []*run) {
	s.mu.Lock()
	for _, r := range recovered {
		s.runs[r.id] = r
	}
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

// stop stops taking work and retry timers, waits for running steps until
// ctx ends or at once when cancelNow, then cancels their contexts with
// ErrEngineStopping. It reports whether every worker returned.
func (s *scheduler) stop(ctx context.Context, cancelNow bool) bool {
	s.mu.Lock()
	if !s.stopping {
		s.stopping = true
		for rt := range s.timers {
			rt.t.Stop()
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

// add registers a newly submitted run and queues its beginning.
func (s *scheduler) add(r *run) {
	s.mu.Lock()
	s.runs[r.id] = r
	s.mu.Unlock()
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

func (s *scheduler) work() {
	defer s.wg.Done()
	for {
		w, ok := s.next()
		if !ok {
			return
		}
		if w.step < 0 {
			s.begin(w.r)
		} else {
			s.attempt(w.r, w.step)
		}
	}
}

// begin moves a new task to in_progress and queues its root steps.
func (s *scheduler) begin(r *run) {
	now := time.Now()
	ch := store.Change{TaskID: r.id, From: string(TaskPending), To: string(TaskInProgress), At: now}
	if err := s.apply([]store.Change{ch}); err != nil {
		s.abandon(r, err)
		return
	}
	r.mu.Lock()
	r.state = TaskInProgress
	ready := r.ready()
	r.mu.Unlock()
	s.push(ready...)
}

// attempt claims step i of r, runs its handler and records the outcome.
func (s *scheduler) attempt(r *run, i int) {
	ch, ok := r.claim(i, time.Now())
	if !ok {
		s.settled(r, i, nil, 0)
		return
	}
	if err := s.apply([]store.Change{ch}); err != nil {
		s.abandon(r, err)
		return
	}
	r.mu.Lock()
	r.record(i, ch)
	r.mu.Unlock()
	spec := r.specs[i]
	h := s.handlers.lookup(spec.Callable)
	out := invoke(s.handlerCtx, h, &StepContext{run: r, spec: spec, attempt: ch.Attempt})
	if out.interrupted {
		return // left in progress, for recovery
	}
	rec, delay := r.outcomeChange(i, ch.Attempt, ch.Error, out, time.Now())
	if err := s.apply([]store.Change{rec}); err != nil {
		s.abandon(r, err)
		return
	}
	s.settled(r, i, &rec, delay)
}

// settled updates r with a durable step change (nil when a queued step was
// skipped), then queues what became ready, arms a retry, or ends the task.
func (s *scheduler) settled(r *run, i int, ch *store.Change, delay time.Duration) {
	r.mu.Lock()
	var ready []work
	if ch != nil {
		ready = r.record(i, *ch)
	}
	r.inflight--
	end, ok := r.endState()
	r.mu.Unlock()
	s.push(ready...)
	if ch != nil && ch.To == string(StepWaitingForRetry) {
		s.retryAfter(delay, r, i)
	}
	if ok {
		s.end(r, end)
	}
}

// retryAfter queues step i of r again after d, unless the engine stops.
func (s *scheduler) retryAfter(d time.Duration, r *run, i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return
	}
	rt := &retryTimer{}
	rt.t = time.AfterFunc(d, func() {
		s.mu.Lock()
		delete(s.timers, rt)
		stopping := s.stopping
		s.mu.Unlock()
		if !stopping {
			s.push(r.requeue(i)...)
		}
	})
	s.timers[rt] = struct{}{}
}

// end records a task's final state and releases it.
func (s *scheduler) end(r *run, state TaskState) {
	ch := store.Change{TaskID: r.id, From: string(TaskInProgress), To: string(state), At: time.Now()}
	if err := s.apply([]store.Change{ch}); err != nil {
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
	delete(s.runs, r.id)
	s.mu.Unlock()
	r.err = err
	close(r.done)
}

// apply writes changes durably. The write outlives the caller: it is not
// cancelled when the engine stops, so a finished step is never lost.
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

// resume queues what a recovered run can do now: ready steps at once, steps
// waiting for a retry when their time comes; a run that is already over ends.
func (s *scheduler) resume(r *run) {
	if r.state == TaskPending {
		s.push(work{r: r, step: -1})
		return
	}
	r.mu.Lock()
	ready := r.ready()
	var retries []int
	for i := range r.steps {
		if r.steps[i].state == StepWaitingForRetry && !r.failed {
			retries = append(retries, i)
		}
	}
	end, ok := r.endState()
	r.mu.Unlock()
	s.push(ready...)
	for _, i := range retries {
		s.retryAfter(time.Until(r.steps[i].nextAt), r, i)
	}
	if ok {
		s.end(r, end)
	}
}

// jitter returns d shortened at random, per JitterFraction.
func jitter(d time.Duration) time.Duration { return Jittered(d, rand.Float64()) }
