package tasker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/gotasker/tasker/store"
)

var errTaskEnded = errors.New("tasker: task ended")

// run is the in-memory state of a task the engine is driving. Its fields
// after mu are guarded by mu; the ones before it are set before the run is
// shared and never change.
type run struct {
	id       string
	tmpl     *Template
	specs    []*StepSpec // the task's steps; a run may gain steps later
	input    json.RawMessage
	deadline time.Time     // zero when none
	done     chan struct{} // closed when the engine stops driving the task
	err      error         // why it was abandoned; set before done closes

	ctx           context.Context // parent of the task's handler contexts
	cancel        context.CancelCauseFunc
	deadlineTimer *timer

	fieldsOnce sync.Once
	fields     map[string]json.RawMessage

	mu        sync.Mutex
	state     TaskState
	steps     []stepRun
	left      int     // steps not done
	inflight  int     // work queued or running: a beginning or step attempts
	failed    bool    // a step failed for good, or the deadline passed
	expired   bool    // the deadline passed
	cancelled *Action // set when an operator cancelled the task
	ended     bool    // the task's final state is decided
}

type stepRun struct {
	state    StepState
	attempts int
	waiting  int // dependencies not yet done
	result   json.RawMessage
	fail     *store.Failure
	nextAt   time.Time
}

// newRun returns the run of a task as stored at submission: every step
// pending, waiting for all of its dependencies.
func newRun(id string, t *Template, input json.RawMessage, deadline time.Time) *run {
	r := &run{id: id, tmpl: t, specs: t.Steps, input: input, deadline: deadline, done: make(chan struct{}),
		state: TaskPending, steps: make([]stepRun, len(t.Steps)), left: len(t.Steps)}
	for i, sp := range t.Steps {
		r.steps[i] = stepRun{state: StepPending, waiting: len(sp.deps)}
	}
	return r
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
		if st := &r.steps[i]; st.state == StepPending && st.waiting == 0 {
			ws = append(ws, work{r: r, step: i})
		}
	}
	r.inflight += len(ws)
	return ws
}

// claim returns the change that starts the next attempt of step i, or false
// when the task may start nothing new.
func (r *run) claim(i int, now time.Time) (store.Change, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.halted() {
		return store.Change{}, false
	}
	return r.claimLocked(i, now), true
}

// claimLocked is claim with mu held, for a task that may go on.
func (r *run) claimLocked(i int, now time.Time) store.Change {
	st := &r.steps[i]
	return store.Change{
		TaskID: r.id, Step: r.specs[i].Name,
		From: string(st.state), FromAttempt: st.attempts,
		To: string(StepInProgress), Attempt: st.attempts + 1,
		Error: st.fail, At: now,
	}
}

// followUp is what is written together with a step's outcome.
type followUp struct {
	extra store.Change // the task's end or the next step's claim; zero when none
	next  int          // the claimed step, which the worker runs next; -1 when none
	last  bool         // extra ends the task: the outcome completes its last step
}

// follow returns what to write with rec, the outcome of step i: when rec
// completes the task's last step, the task's end (decided here); otherwise,
// when it makes a dependent ready, that dependent's claim, so that the
// worker goes straight on to it. No one else can claim that dependent
// meanwhile: only rec's completion makes it ready.
func (r *run) follow(i int, rec store.Change) followUp {
	r.mu.Lock()
	defer r.mu.Unlock()
	none := followUp{next: -1}
	switch {
	case rec.To != string(StepComplete) || r.ended:
		return none
	case r.left == 1:
		r.ended = true
		return followUp{next: -1, last: true,
			extra: store.Change{TaskID: r.id, From: string(r.state), To: string(TaskComplete), At: rec.At}}
	case r.halted():
		return none
	}
	for _, d := range r.specs[i].dependents {
		if st := r.steps[d]; st.waiting == 1 && st.state == StepPending {
			return followUp{next: d, extra: r.claimLocked(d, rec.At)}
		}
	}
	return none
}

// continueWith records the claim of step d, written with its dependency's
// outcome, and returns ready with d first, marked as claimed and in flight
// (even if the task halted meanwhile: its attempt is durable and must run).
// Called with mu held.
func (r *run) continueWith(d int, claim store.Change, ready []work) []work {
	r.record(d, claim)
	w := work{r: r, step: d, claimed: &claim}
	if k := slices.IndexFunc(ready, func(w work) bool { return w.step == d }); k >= 0 {
		ready[k] = ready[0]
		ready[0] = w
		return ready
	}
	r.inflight++
	return append([]work{w}, ready...)
}

// outcomeChange returns the change that records an attempt's outcome and,
// for a retry, the delay before the next attempt. A success keeps the step's
// last failure, prev, for the record.
func (r *run) outcomeChange(i, attempt int, prev *store.Failure, out outcome, now time.Time) (store.Change, time.Duration) {
	spec := r.specs[i]
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

// record applies a durable change of step i to memory and returns the steps
// it made ready, marked in flight. Called with mu held.
func (r *run) record(i int, ch store.Change) []work {
	st := &r.steps[i]
	st.state, st.attempts = StepState(ch.To), ch.Attempt
	st.result, st.fail, st.nextAt = ch.Result, ch.Error, ch.NextAttemptAt
	switch {
	case st.state == StepFailed:
		r.failed = true
	case st.state.Done():
		r.left--
		var ws []work
		for _, d := range r.specs[i].dependents {
			dep := &r.steps[d]
			dep.waiting--
			if dep.waiting == 0 && dep.state == StepPending && !r.halted() {
				ws = append(ws, work{r: r, step: d})
			}
		}
		r.inflight += len(ws)
		return ws
	}
	return nil
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

// finish decides, once, whether the task is over, and returns the changes
// that record its end: complete when every step is done; otherwise, once
// nothing is in flight, cancelled (its unstarted steps too) or in error.
// Called with mu held.
func (r *run) finish() ([]store.Change, bool) {
	var to TaskState
	switch {
	case r.ended:
		return nil, false
	case r.left == 0:
		to = TaskComplete
	case r.inflight > 0:
		return nil, false
	case r.cancelled != nil:
		to = TaskCancelled
	case r.failed:
		to = TaskFailed
	default:
		return nil, false
	}
	r.ended = true
	now := time.Now()
	var by Action
	if to == TaskCancelled {
		by = *r.cancelled
	}
	var changes []store.Change
	for i, st := range r.steps {
		if to == TaskCancelled && (st.state == StepPending || st.state == StepWaitingForRetry) {
			changes = append(changes, store.Change{TaskID: r.id, Step: r.specs[i].Name,
				From: string(st.state), FromAttempt: st.attempts, To: string(StepCancelled),
				Attempt: st.attempts, Error: st.fail, At: now, By: by.By, Reason: by.Reason})
		}
	}
	if r.expired && to == TaskFailed {
		by.Reason = "task deadline exceeded"
	}
	return append(changes, store.Change{TaskID: r.id, From: string(r.state), To: string(to),
		At: now, By: by.By, Reason: by.Reason}), true
}

// inputField returns the task input's value under key, or nil.
func (r *run) inputField(key string) json.RawMessage {
	r.fieldsOnce.Do(func() { _ = json.Unmarshal(r.input, &r.fields) })
	return r.fields[key]
}

// upstreamResult returns the result of the step named name if it is a
// done step upstream of step from, directly or transitively.
func (r *run) upstreamResult(from int, name string) json.RawMessage {
	spec := r.tmpl.Step(name)
	if spec == nil || !r.upstream(from, spec.index) {
		return nil
	}
	target := spec.index
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.steps[target].state.Done() {
		return nil
	}
	return r.steps[target].result
}

// upstream reports whether step anc is an ancestor of step from, searching
// the dependency graph backwards from from.
func (r *run) upstream(from, anc int) bool {
	if slices.Contains(r.specs[from].deps, anc) {
		return true // a direct dependency, the usual case
	}
	seen := make(map[int]bool)
	stack := slices.Clone(r.specs[from].deps)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i == anc {
			return true
		}
		if !seen[i] {
			seen[i] = true
			stack = append(stack, r.specs[i].deps...)
		}
	}
	return false
}
