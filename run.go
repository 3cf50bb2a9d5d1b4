package tasker

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotasker/tasker/store"
)

// run is the in-memory state of a task the engine drives, and its one
// owner: a small state machine. Each method takes an event — the task
// begins, a step is claimed, an attempt ends, an operator cancels, the
// deadline passes, a worker's turn is over — updates the state under the
// run's lock and returns what follows from it as effects, for the scheduler
// to carry out: the changes to write, the work to run or queue, a retry to
// time, whether the task's end is decided. No code outside this file reads
// or changes a run's fields, and none takes its lock.
//
// The state runs ahead of the store: an event's effects are applied here
// when they are decided, and the scheduler writes them before it acts on
// them (work starts only once the changes that made it ready are durable).
// A run counts its turns in flight — a beginning, a step attempt, a write
// not yet durable — and decides a halted task's end only when none is left,
// so the end is always written after every outcome before it.
type run struct {
	// Set by newRun and never changed.
	id   string
	tmpl *Template
	// specs are the task's steps, by index: the template's, then the batch
	// workers added (under mu) as a new slice each time, so that reading
	// one needs no lock.
	specs    atomic.Pointer[[]*StepSpec]
	input    json.RawMessage
	deadline time.Time   // zero when none
	created  time.Time   // when the task was submitted
	info     *store.Task // the task as submitted, for TaskInfo
	ctx      context.Context
	cancel   context.CancelCauseFunc
	done     chan struct{} // closed when the engine stops driving the task
	// lease is the fencing token of the lease this engine held on the
	// task when it built the run, on a store many engines share (0 on any
	// other). Set before the run is shared (withLease) and never changed,
	// it is stamped on every write of the run, so that once the task has
	// changed hands, even back to this engine, nothing more of this run is
	// recorded.
	lease int64

	fieldsOnce sync.Once
	fields     map[string]json.RawMessage

	mu        sync.Mutex
	state     TaskState
	steps     []stepRun
	left      int       // steps not done
	inflight  int       // turns in flight: a beginning, attempts, writes not yet durable
	failed    bool      // a step failed for good, or the task was cut short
	cut       *cutoff   // why the task was cut short (deadline, staleness); nil when not
	exhausted string    // set when a step failed for good after retryable failures
	reported  bool      // staleness that only reports was reported
	progress  time.Time // when a step last changed state (or the task was created or adopted)
	cancelled *Action   // set when an operator cancelled the task
	ended     bool      // the task's final state is decided
	end       TaskState // that final state, once decided (r.state stays what is stored before it)
	released  bool      // the engine stopped driving the task: done is closed

	index       map[string]int            // batch workers' names → indexes; nil until the first
	batches     map[*StepSpec]*batchGroup // by worker template; nil until the first worker
	batchFailed bool                      // a batch worker failed under continue_on_failure
	err         error                     // why the engine stopped driving it early; nil when it ended
	timer       *timer                    // the deadline's, stopped on release

	// linksUnread is set on a run restored from the store: the sub-tasks
	// its steps started before are named by its stored audit trail, not
	// yet read into their child fields (see learnLinks).
	linksUnread bool
}

type stepRun struct {
	state      StepState
	attempts   int
	waiting    int // dependencies not yet done
	result     json.RawMessage
	fail       *store.Failure
	nextAt     time.Time
	since      time.Time       // when the step entered its state; zero: not since this run began
	presence   presence        // created (stored), or still undecided or never created by a decision
	picked     bool            // its decision parent chose it
	slot       bool            // a batch worker holding one of its group's places
	durable    bool            // it settled (done, or an isolated batch worker failed) and that is stored: its dependents no longer wait for it
	checkpoint json.RawMessage // what its handler last saved of its progress
	parked     *store.Change   // the claim of the attempt waiting for its sub-task; nil when none
	woken      bool            // its sub-task ended before the attempt parked
	child      string          // the sub-task it started, once it did
}

// cutoff says why a task is cut short before its steps ran: its deadline
// passed, or it went stale. The steps that will not run end in error with
// its code, and the task's end carries its reason and, when set, a
// dead-letter entry.
type cutoff struct {
	code, message, reason string
	cause                 error // the handlers' contexts' cancellation cause
	deadLetter            *store.DeadLetter
}

// effects is what follows from an event on a run. The scheduler carries
// them out in order: it writes the changes in one batch; once they are
// durable it releases the run if they end the task, times the retry, runs
// or queues the work and, when the event ended a turn, settles it.
type effects struct {
	writes []store.Change
	work   []work        // ready work; work[0] may be claimed, for the same worker
	retry  int           // the step to requeue after delay; -1 when none
	delay  time.Duration // before the retry
	ends   bool          // writes record the task's end
	settle bool          // the event ended a turn: settle it once writes are durable
	// release is 1 + the index of the step whose settling (its completion)
	// writes carry: once they are durable, its dependents stop waiting for
	// it. 0 when none.
	release int
	events  *eventBatch // the domain events an outcome publishes; nil when none
}

// none is the effects of an event that leads to nothing.
var none = effects{retry: -1}

// newRun returns the run of a task as stored at submission: every step
// pending, waiting for all of its dependencies. Its handlers' contexts
// derive from parent.
func newRun(parent context.Context, rec *store.Task, t *Template) *run {
	r := &run{id: rec.ID, tmpl: t, input: rec.Context, created: rec.CreatedAt, deadline: rec.Deadline,
		info: rec, done: make(chan struct{}),
		state: TaskPending, steps: make([]stepRun, len(t.Steps)), left: len(t.Steps), progress: rec.CreatedAt}
	r.specs.Store(&t.Steps)
	r.ctx, r.cancel = context.WithCancelCause(parent)
	for i, sp := range t.Steps {
		r.steps[i] = stepRun{state: StepPending, waiting: len(sp.deps)}
		if !sp.atStart {
			r.steps[i].presence = undecided
		}
	}
	return r
}

// spec returns the spec of step i.
func (r *run) spec(i int) *StepSpec { return (*r.specs.Load())[i] }

// specList returns the specs of every step, by index.
func (r *run) specList() []*StepSpec { return *r.specs.Load() }

// startTurn counts a turn in flight that the scheduler starts: a new task's
// beginning, or the resumption of a restored one.
func (r *run) startTurn() {
	r.mu.Lock()
	r.inflight++
	r.mu.Unlock()
}

// begin starts a new task: it moves the task to in_progress and returns its
// root steps as work, the first one and up to spare more claimed in the
// same write. A task cancelled before it began ends instead.
func (r *run) begin(now time.Time, buf []store.Change, spare int) effects {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != TaskPending || r.halted() {
		return r.settleLocked(now)
	}
	buf = append(buf[:0], store.Change{TaskID: r.id, From: string(TaskPending), To: string(TaskInProgress), At: now})
	r.state = TaskInProgress
	ready := r.ready()
	for k := range min(len(ready), 1+spare) {
		ready[k], buf = r.claimFirst(ready[k].step, now, buf)
	}
	return effects{writes: buf, work: ready, retry: -1, settle: true}
}

// claimFirst claims step i in memory, appends the claim to writes and
// returns i's work marked as claimed, for a turn that writes the claim with
// other changes.
func (r *run) claimFirst(i int, now time.Time, writes []store.Change) (work, []store.Change) {
	ch := r.claimChange(i, now)
	r.apply(i, ch)
	return work{r: r, step: i, claimed: &ch}, append(writes, ch)
}

// claim starts the next attempt of step i and returns the change to write,
// or false when the task may start nothing new: the turn is then over, and
// settle says what follows.
func (r *run) claim(i int, now time.Time) (store.Change, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.halted() {
		return store.Change{}, false
	}
	ch := r.claimChange(i, now)
	r.apply(i, ch)
	return ch, true
}

// claimChange returns the change that starts the next attempt of step i.
// Called with mu held.
func (r *run) claimChange(i int, now time.Time) store.Change {
	st := &r.steps[i]
	return store.Change{
		TaskID: r.id, Step: r.spec(i).Name,
		From: string(st.state), FromAttempt: st.attempts,
		To: string(StepInProgress), Attempt: st.attempts + 1,
		Error: st.fail, At: now,
	}
}

// outcome records how attempt claim of step i ended and returns what
// follows: the outcome to write and, in the same write, the task's end when
// it completes the last step, or the claim of a dependent it made ready, so
// that the worker goes straight on to that one (no one else can claim it
// meanwhile: only this outcome made it ready), and of up to spare more, for
// idle workers to run at once; the dependents it made ready; a retry to
// time.
func (r *run) outcome(i int, claim store.Change, out outcome, now time.Time, buf []store.Change, spare int) effects {
	rec, delay := r.outcomeChange(i, claim.Attempt, claim.Error, out, now)
	r.mu.Lock()
	defer r.mu.Unlock()
	var g *growth
	if t := r.spec(i).Type; (t == StepDecision || t == StepBatchable) && rec.To == string(StepComplete) {
		g, rec = r.planGrowth(i, rec)
	}
	var evs *eventBatch
	if spec := r.spec(i); len(spec.events) > 0 {
		// After planGrowth, which may turn a success into a failure.
		rec.Outbox, evs = publishes(spec, runMeta(r), rec, out.payloads, out.outbox)
	}
	buf = append(buf[:0], rec)
	ready := r.apply(i, rec)
	if g != nil {
		var made []work
		buf, made = r.grow(g, now, buf)
		r.inflight += len(made)
		ready = append(ready, made...)
	}
	eff := effects{writes: buf, work: ready, retry: -1, settle: true, events: evs}
	if r.settles(i) {
		eff.release = i + 1
	}
	switch {
	case rec.To == string(StepWaitingForRetry):
		eff.retry, eff.delay = i, delay
	case rec.To != string(StepComplete) || r.ended || r.halted():
	case r.left == 1 && !r.batchFailed:
		// The last step to settle, every other one stored: the task's end
		// goes in the same write.
		r.ended, r.end = true, TaskComplete
		r.inflight--
		eff.writes = append(eff.writes, store.Change{TaskID: r.id, From: string(r.state), To: string(TaskComplete), At: now})
		eff.ends, eff.settle = true, false
	default:
		if d, next := r.nextClaim(i, 0); d >= 0 {
			// The turn goes on with the dependent this outcome makes
			// ready, claimed in this write (its other dependencies are
			// stored already); it takes over the turn's place in flight.
			// Up to spare more are claimed with it, each a turn of its
			// own, for the idle workers: one write instead of one each.
			claimed := make([]work, 1, 1+min(spare, len(r.spec(i).dependents)))
			claimed[0], eff.writes = r.claimFirst(d, now, eff.writes)
			for range spare {
				if d, next = r.nextClaim(i, next); d < 0 {
					break
				}
				var w work
				w, eff.writes = r.claimFirst(d, now, eff.writes)
				claimed = append(claimed, w)
				r.inflight++
			}
			eff.work = append(claimed, eff.work...)
			eff.settle = false
		}
	}
	return eff
}

// stored is the event of a write becoming durable: the step whose settling
// it carried (release, as effects.release: 1 + its index; 0 for none) is
// released — the task has one step less to wait for, and so do its
// dependents, those made ready appended to ws as work in flight — and,
// when settle, the turn that wrote it ends, with what follows from that.
// One lock for both, on the hot path.
func (r *run) stored(release int, settle bool, ws []work, now time.Time) ([]work, effects) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if release > 0 {
		ws = r.durable(release-1, ws)
	}
	if !settle {
		return ws, none
	}
	return ws, r.settleLocked(now)
}

// durable releases step i, whose settling change is now stored. Called
// with mu held.
func (r *run) durable(i int, ws []work) []work {
	st := &r.steps[i]
	if st.durable || !r.settles(i) {
		return ws
	}
	st.durable = true
	r.left--
	n := len(ws)
	for _, d := range r.spec(i).dependents {
		dep := &r.steps[d]
		if dep.presence != created {
			continue // its decision creates it, with its count
		}
		if dep.waiting--; dep.waiting == 0 && dep.state == StepPending && !r.halted() {
			ws = r.admit(d, ws)
		}
	}
	r.inflight += len(ws) - n
	return ws
}

// settles reports whether step i, in its current state, no longer holds up
// its dependents: done, or a batch worker that failed under a strategy that
// goes on. Called with mu held.
func (r *run) settles(i int) bool {
	st := r.steps[i].state
	return st.Done() || st == StepFailed && r.isolated(i)
}

// outcomeChange returns the change that records an attempt's outcome and,
// for a retry, the delay before the next attempt. A success keeps the step's
// last failure, prev, for the record.
func (r *run) outcomeChange(i, attempt int, prev *store.Failure, out outcome, now time.Time) (store.Change, time.Duration) {
	spec := r.spec(i)
	ch := store.Change{TaskID: r.id, Step: spec.Name, From: string(StepInProgress),
		FromAttempt: attempt, Attempt: attempt, At: now}
	switch {
	case out.cancelled:
		ch.To, ch.Error = string(StepCancelled), prev
		return ch, 0
	case out.fail == nil:
		ch.To, ch.Result, ch.Error = string(StepComplete), out.result, prev
		return ch, 0
	case spec.Retry.ShouldRetry(attempt, out.fail.Retryable):
		d := jitter(spec.Retry.Delay(attempt, out.retryAfter))
		ch.To, ch.Error, ch.NextAttemptAt = string(StepWaitingForRetry), out.fail, now.Add(d)
		return ch, d
	default:
		ch.To, ch.Error = string(StepFailed), out.fail
		return ch, 0
	}
}

// requeue returns step i as work again after its retry delay, unless the
// task may start nothing new.
func (r *run) requeue(i int) []work {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.halted() || r.steps[i].state != StepWaitingForRetry {
		return nil
	}
	r.inflight++
	return []work{{r: r, step: i}}
}

// settle ends a turn whose writes are durable: once no turn is in flight, a
// halted task's end follows.
func (r *run) settle(now time.Time) effects {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.settleLocked(now)
}

func (r *run) settleLocked(now time.Time) effects {
	r.inflight--
	return r.finish(now)
}

// cancelBy cancels the task on a's behalf: nothing new starts, running
// handlers' contexts are cancelled, and the end follows once no turn is in
// flight. It reports false when the task's end was decided already.
func (r *run) cancelBy(a Action, now time.Time) (effects, bool) {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return none, false
	}
	if r.cancelled == nil {
		r.cancelled = &a
	}
	unparked := r.unpark(now, outcome{cancelled: true})
	eff := r.finish(now)
	eff.writes = append(unparked, eff.writes...)
	r.mu.Unlock()
	r.cancel(ErrTaskCancelled)
	return eff, true
}

// expire ends a task whose deadline passed: nothing new starts, running
// handlers' contexts are cancelled (they fail as timeouts), and once none
// runs the task ends in error.
func (r *run) expire(now time.Time) effects {
	return r.cutShort(now, &cutoff{code: CodeTaskDeadline, message: "the task's deadline passed before the step ran",
		reason: "task deadline exceeded", cause: ErrTaskDeadline})
}

// cutShort ends the task early, in error, for c's reason: nothing new
// starts, running handlers' contexts are cancelled with c's cause, and once
// none runs the task ends, with every step that did not run.
func (r *run) cutShort(now time.Time, c *cutoff) effects {
	r.mu.Lock()
	if r.ended || r.cut != nil {
		r.mu.Unlock()
		return none
	}
	r.failed, r.cut = true, c
	unparked := r.unpark(now, outcome{fail: &store.Failure{Message: c.message, Type: string(ErrorTimeout), Code: c.code}})
	eff := r.finish(now)
	eff.writes = append(unparked, eff.writes...)
	r.mu.Unlock()
	r.cancel(c.cause)
	return eff
}

// staleness returns why the task is stale at now by lc's thresholds, and
// whether that is its max_duration (a timeout), or "" when it is not:
//   - it has existed longer than max_duration_minutes;
//   - a step has been in progress longer than max_steps_in_process_minutes;
//   - with no step in progress, some waiting for a retry, nothing has
//     changed for longer than max_waiting_for_retry_minutes;
//   - with steps only pending (waiting for their dependencies or a worker),
//     nothing has changed for longer than max_waiting_for_dependencies_minutes.
func (r *run) staleness(now time.Time, lc *Lifecycle) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.halted() {
		return "", false
	}
	if age := now.Sub(r.created); lc.MaxDuration > 0 && age > lc.MaxDuration {
		return fmt.Sprintf("the task has existed for %s, over max_duration_minutes (%s)", age.Round(time.Second), lc.MaxDuration), true
	}
	running, retrying := false, false
	for i, st := range r.steps {
		switch st.state {
		case StepInProgress:
			if age := now.Sub(st.since); lc.MaxStepsInProcess > 0 && age > lc.MaxStepsInProcess {
				return fmt.Sprintf("step %s has been in progress for %s, over max_steps_in_process_minutes (%s)",
					r.spec(i).Name, age.Round(time.Second), lc.MaxStepsInProcess), false
			}
			running = true
		case StepWaitingForRetry:
			retrying = true
		}
	}
	if running {
		return "", false // a step runs: the task is not waiting
	}
	limit, what := lc.MaxWaitingForDependencies, "waiting for dependencies"
	if retrying {
		limit, what = lc.MaxWaitingForRetry, "waiting for a retry"
	}
	if idle := now.Sub(r.progress); limit > 0 && idle > limit {
		return fmt.Sprintf("the task has been %s for %s with no progress, over the limit (%s)", what, idle.Round(time.Second), limit), false
	}
	return "", false
}

// reportOnce reports whether staleness that only reports has not been
// reported yet for this task, and marks it reported.
func (r *run) reportOnce() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := !r.reported
	r.reported = true
	return first
}

// halted reports whether the task may start nothing new. Called with mu held.
func (r *run) halted() bool { return r.failed || r.cancelled != nil || r.ended }

// ready marks every pending step with no unfinished dependency as in flight
// and returns it as work. Called with mu held.
func (r *run) ready() []work {
	if r.halted() {
		return nil
	}
	var ws []work
	for i := range r.steps {
		if st := &r.steps[i]; st.state == StepPending && st.waiting == 0 && st.presence == created && !st.slot {
			ws = r.admit(i, ws)
		}
	}
	r.inflight += len(ws)
	return ws
}

// apply records change ch of step i and returns the dependents it made
// ready, as work in flight. Called with mu held.
func (r *run) apply(i int, ch store.Change) []work {
	st := &r.steps[i]
	st.state, st.attempts = StepState(ch.To), ch.Attempt
	st.result, st.fail, st.nextAt, st.since = ch.Result, ch.Error, ch.NextAttemptAt, ch.At
	r.progress = ch.At
	var ws []work
	if st.state.Ended() {
		ws = r.vacate(i, ws)
	}
	switch {
	case st.state == StepFailed && r.isolated(i):
		// Its convergence goes on without it, once this is stored.
		r.batchFailed = r.batchFailed || r.batches[r.spec(i).of].strategy == batchContinue
	case st.state == StepFailed:
		r.failed = true
		if ch.Error != nil && ch.Error.Retryable && r.exhausted == "" {
			r.exhausted = fmt.Sprintf("step %s failed after %d attempts: %s", r.spec(i).Name, ch.Attempt, ch.Error.Message)
		}
	}
	r.inflight += len(ws)
	return ws
}

// The failure strategies of a batch.
const (
	batchContinue = "continue_on_failure"
	batchFailFast = "fail_fast"
	batchIsolate  = "isolate"
)

// finish decides, once, whether the task is over, and returns the changes
// that record its end: complete when every step is done; otherwise, once
// nothing is in flight, cancelled or in error. The steps that will not run
// now end with it: cancelled, for a cancelled task or one past its
// deadline. Called with mu held.
func (r *run) finish(now time.Time) effects {
	var to TaskState
	switch {
	case r.ended:
		return none
	case r.left == 0 && !r.batchFailed:
		to = TaskComplete
	case r.inflight > 0:
		return none
	case r.cancelled != nil:
		to = TaskCancelled
	case r.left == 0: // a batch worker failed under continue_on_failure
		to = TaskFailed
	case r.failed:
		to = TaskFailed
	default:
		return none
	}
	r.ended, r.end = true, to
	var by Action
	switch {
	case to == TaskCancelled:
		by = *r.cancelled
	case r.cut != nil && to == TaskFailed:
		by.Reason = r.cut.reason
	}
	var changes []store.Change
	for i, st := range r.steps {
		if (to == TaskCancelled || r.cut != nil) && st.presence == created && (st.state == StepPending || st.state == StepWaitingForRetry) {
			changes = append(changes, r.cutOff(i, to, by, now))
		}
	}
	end := store.Change{TaskID: r.id, From: string(r.state), To: string(to), At: now, By: by.By, Reason: by.Reason}
	if to == TaskFailed {
		end.DeadLetter = r.deadLetter()
	}
	return effects{writes: append(changes, end), retry: -1, ends: true}
}

// deadLetter returns the dead-letter entry a task ending in error gets, or
// nil: one for staleness that asks for it, and one for a step that ran out
// of attempts, as Tasker records exhausted retries. Called with mu held.
func (r *run) deadLetter() *store.DeadLetter {
	switch {
	case r.cut != nil:
		return r.cut.deadLetter
	case r.exhausted != "":
		return &store.DeadLetter{Reason: DeadLetterRetriesExhausted, Message: r.exhausted}
	}
	return nil
}

// cutOff returns the change that ends step i, which has not run, with its
// task: cancelled with a cancelled task, in error (code TASK_DEADLINE or
// STALE) with a task cut short, so that Retry runs it again and Resolve may
// resolve it. Called with mu held.
func (r *run) cutOff(i int, task TaskState, by Action, now time.Time) store.Change {
	st := r.steps[i]
	ch := store.Change{TaskID: r.id, Step: r.spec(i).Name, From: string(st.state), FromAttempt: st.attempts,
		To: string(StepCancelled), Attempt: st.attempts, Error: st.fail, At: now, By: by.By, Reason: by.Reason}
	if task == TaskFailed {
		ch.To = string(StepFailed)
		ch.Error = &store.Failure{Message: r.cut.message, Type: string(ErrorTimeout), Code: r.cut.code, Attempt: st.attempts}
	}
	return ch
}

// withLease sets the fencing token of r's writes, before r is shared.
func (r *run) withLease(token int64) *run {
	r.lease = token
	return r
}

// leaseToken returns the fencing token of r's writes.
func (r *run) leaseToken() int64 { return r.lease }

// isEnded reports whether the run's final state is decided.
func (r *run) isEnded() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ended
}

// watch keeps t, the deadline's timer, for release to stop.
func (r *run) watch(t *timer) {
	r.mu.Lock()
	r.timer = t
	r.mu.Unlock()
}

// release ends the run: err says why the engine stopped driving the task
// early (nil when it ended). Handlers still running see their contexts
// cancelled; Wait callers are let through. It returns the deadline's timer,
// for the scheduler to stop.
func (r *run) release(err error) *timer {
	r.mu.Lock()
	if r.released {
		r.mu.Unlock()
		return nil // two turns of the task gave it up at once
	}
	r.ended, r.released, r.err = true, true, err
	t := r.timer
	r.mu.Unlock()
	r.cancel(errTaskEnded)
	close(r.done)
	return t
}

// abandoned returns why the engine stopped driving the task before its end,
// or nil. Valid once done is closed.
func (r *run) abandoned() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// inputField returns the task input's value under key, or nil.
func (r *run) inputField(key string) json.RawMessage {
	r.fieldsOnce.Do(func() { _ = json.Unmarshal(r.input, &r.fields) })
	return r.fields[key]
}

// upstreamResult returns the result of the step named name if it is a
// done step upstream of step from, directly or transitively. anc caches
// from's ancestors across calls of one attempt, so that reading every
// ancestor costs O(steps + edges) in all, not per read.
func (r *run) upstreamResult(from int, name string, anc *[]bool) json.RawMessage {
	spec := r.tmpl.Step(name)
	if spec == nil || !r.upstream(from, spec.index, anc) {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := &r.steps[spec.index]; st.state.Done() {
		return st.result
	}
	return nil
}

// checkpointChange returns the change that saves checkpoint raw for
// attempt of step i, or false when the attempt is no longer the step's
// running one.
func (r *run) checkpointChange(i, attempt int, raw json.RawMessage, now time.Time) (store.Change, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.steps[i]
	if st.state != StepInProgress || st.attempts != attempt {
		return store.Change{}, false
	}
	return store.Change{TaskID: r.id, Step: r.spec(i).Name, From: string(StepInProgress), FromAttempt: attempt,
		To: string(StepInProgress), Attempt: attempt, Error: st.fail, Checkpoint: raw, At: now, Reason: "checkpoint"}, true
}

// checkpointed records checkpoint raw of step i, now durable.
func (r *run) checkpointed(i int, raw json.RawMessage) {
	r.mu.Lock()
	r.steps[i].checkpoint = raw
	r.mu.Unlock()
}

// checkpoint returns step i's last saved checkpoint, or nil.
func (r *run) checkpoint(i int) json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.steps[i].checkpoint
}

// park makes the attempt claim of step i wait for its sub-task, holding
// no worker: its turn stays in flight until wake. A sub-task that ended
// before the attempt parked wakes it at once.
func (r *run) park(i int, claim store.Change) effects {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &r.steps[i]
	if st.woken {
		st.woken = false
		return effects{work: []work{{r: r, step: i, claimed: &claim}}, retry: -1}
	}
	st.parked = &claim
	return none
}

// wake returns the parked attempt of step i as work, its sub-task ended,
// to call its handler again; before it parked, it marks it woken.
func (r *run) wake(i int) []work {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &r.steps[i]
	if st.parked == nil {
		st.woken = true
		return nil
	}
	claim := st.parked
	st.parked = nil
	return []work{{r: r, step: i, claimed: claim}}
}

// unpark ends every parked attempt with out, for a task that is cancelled
// or cut short, and returns the changes recording it. Called with mu held.
func (r *run) unpark(now time.Time, out outcome) []store.Change {
	var changes []store.Change
	for i := range r.steps {
		st := &r.steps[i]
		if st.parked == nil {
			continue
		}
		claim := st.parked
		st.parked = nil
		fail := out.fail
		if fail != nil {
			f := *fail
			f.Attempt = claim.Attempt
			fail = &f
		}
		ch, _ := r.outcomeChange(i, claim.Attempt, claim.Error, outcome{cancelled: out.cancelled, fail: fail}, now)
		if fail != nil {
			ch.To, ch.NextAttemptAt = string(StepFailed), time.Time{} // the task ends: no retry
		}
		r.apply(i, ch)
		r.inflight--
		changes = append(changes, ch)
	}
	return changes
}

// linked records that step i started sub-task child, and reports whether
// that is new.
func (r *run) linked(i int, child string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &r.steps[i]
	if st.child == child {
		return false
	}
	st.child = child
	return true
}

// childOf returns the sub-task step i started, "" when none, and whether
// the run knows: it does not for a step without one in memory of a run
// restored from the store whose audit trail it has not read (learnLinks).
func (r *run) childOf(i int) (child string, known bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	child = r.steps[i].child
	return child, child != "" || !r.linksUnread
}

// learnLinks records links, the sub-task each step named started as its
// stored audit trail says, for the steps that have none in memory; from
// then on the run knows its steps' sub-tasks.
func (r *run) learnLinks(links map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, child := range links {
		if i, ok := r.lookup(name); ok && r.steps[i].child == "" {
			r.steps[i].child = child
		}
	}
	r.linksUnread = false
}

// children returns the sub-tasks the task's waiting steps started.
func (r *run) children() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, st := range r.steps {
		if st.parked != nil && st.child != "" {
			out = append(out, st.child)
		}
	}
	return out
}

// batchResults returns the outcomes of the instances of worker template
// worker, when it is a direct dependency of step from.
func (r *run) batchResults(from int, worker string) []BatchResult {
	w := r.tmpl.Step(worker)
	if w == nil || w.Type != StepBatchWorker || !slices.Contains(r.spec(from).deps, w.index) {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.batches[w]
	out := make([]BatchResult, 0, len(g.instancesOrNil()))
	for _, i := range g.instancesOrNil() {
		st, spec := r.steps[i], r.spec(i)
		br := BatchResult{Step: spec.Name, State: st.state, Error: failureView(st.fail)}
		_ = json.Unmarshal(spec.cursor, &br.Cursor)
		if st.state.Done() {
			br.Result = st.result
		}
		out = append(out, br)
	}
	return out
}

// upstream reports whether step a is an ancestor of step from. A direct
// dependency, the usual case, costs nothing more; otherwise the ancestors
// are found once, searching the graph backwards from from, and kept in anc.
func (r *run) upstream(from, a int, anc *[]bool) bool {
	if slices.Contains(r.spec(from).deps, a) {
		return true
	}
	if *anc == nil {
		seen := make([]bool, len(r.specList()))
		stack := slices.Clone(r.spec(from).deps)
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if !seen[i] {
				seen[i] = true
				stack = append(stack, r.spec(i).deps...)
			}
		}
		*anc = seen
	}
	return (*anc)[a]
}

// resumption is what a run adopted from the store can do at once: its
// effects (the turn of its resumption, settled like any other) and the
// steps waiting for a retry, with their times.
type resumption struct {
	effects
	waiting []retryAt
}

type retryAt struct {
	step int
	at   time.Time
}

// resume starts a restored run: a pending task begins; otherwise its ready
// steps run at once, the steps waiting for a retry run when their time
// comes, and a task that is over ends.
func (r *run) resume(now time.Time) resumption {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight++ // the resumption's turn, settled by the scheduler
	if r.state == TaskPending {
		return resumption{effects: effects{work: []work{{r: r, step: -1}}, retry: -1}}
	}
	res := resumption{effects: effects{work: r.ready(), retry: -1, settle: true}}
	if !r.halted() {
		for i, st := range r.steps {
			if st.state == StepWaitingForRetry {
				res.waiting = append(res.waiting, retryAt{step: i, at: st.nextAt})
			}
		}
	}
	return res
}

// final returns the task as its run ended, from memory, for WaitOutcome:
// the task as submitted in its final state, and its created steps with
// their final states, results and failures. ok is false while the run has
// not ended, or when the engine stopped driving it before its end.
func (r *run) final() (rec store.Task, steps []store.Step, children []string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.released || r.err != nil || r.end == "" {
		return rec, nil, nil, false
	}
	rec = *r.info
	rec.State = string(r.end)
	specs := r.specList()
	steps = make([]store.Step, 0, len(r.steps))
	children = make([]string, 0, len(r.steps))
	for i := range r.steps {
		st := &r.steps[i]
		if st.presence != created {
			continue
		}
		steps = append(steps, store.Step{TaskID: r.id, Name: specs[i].Name, Position: i,
			State: string(st.state), Attempts: st.attempts, Result: st.result, Error: st.fail,
			NextAttemptAt: st.nextAt, UpdatedAt: st.since, Checkpoint: st.checkpoint})
		children = append(children, st.child)
	}
	return rec, steps, children, true
}
