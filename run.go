package tasker

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/gotasker/tasker/store"
)

// run is the in-memory state of a task the engine is driving. Its fields
// after mu are guarded by mu; the ones before it never change.
type run struct {
	id    string
	tmpl  *Template
	specs []*StepSpec // the task's steps; a run may gain steps later
	input json.RawMessage
	done  chan struct{} // closed when the engine stops driving the task
	err   error         // why it was abandoned; set before done closes

	fieldsOnce sync.Once
	fields     map[string]json.RawMessage

	mu       sync.Mutex
	state    TaskState
	steps    []stepRun
	left     int  // steps not complete
	inflight int  // steps queued or running
	failed   bool // a step failed for good: start nothing new
	ended    bool // the task's final state is decided
}

type stepRun struct {
	state    StepState
	attempts int
	waiting  int // dependencies not yet complete
	result   json.RawMessage
	fail     *store.Failure
	nextAt   time.Time
}

// newRun returns the run of a task that has just been stored: every step
// pending, waiting for all of its dependencies.
func newRun(id string, t *Template, input json.RawMessage) *run {
	r := &run{id: id, tmpl: t, specs: t.Steps, input: input, done: make(chan struct{}),
		state: TaskPending, steps: make([]stepRun, len(t.Steps)), left: len(t.Steps)}
	for i, sp := range t.Steps {
		r.steps[i] = stepRun{state: StepPending, waiting: len(sp.deps)}
	}
	return r
}

// ready marks every pending step with no unfinished dependency as in flight
// and returns it as work. Called with mu held.
func (r *run) ready() []work {
	if r.failed || r.ended {
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
	if r.failed || r.ended {
		return store.Change{}, false
	}
	st := &r.steps[i]
	return store.Change{
		TaskID: r.id, Step: r.specs[i].Name,
		From: string(st.state), FromAttempt: st.attempts,
		To: string(StepInProgress), Attempt: st.attempts + 1,
		Error: st.fail, At: now,
	}, true
}

// outcomeChange returns the change that records an attempt's outcome and,
// for a retry, the delay before the next attempt. A success keeps the step's
// last failure, prev, for the record.
func (r *run) outcomeChange(i, attempt int, prev *store.Failure, out outcome, now time.Time) (store.Change, time.Duration) {
	spec := r.specs[i]
	ch := store.Change{TaskID: r.id, Step: spec.Name, From: string(StepInProgress),
		FromAttempt: attempt, Attempt: attempt, At: now}
	switch {
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
	switch st.state {
	case StepFailed:
		r.failed = true
	case StepComplete:
		r.left--
		var ws []work
		for _, d := range r.specs[i].dependents {
			dep := &r.steps[d]
			dep.waiting--
			if dep.waiting == 0 && dep.state == StepPending && !r.failed {
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
	if r.failed || r.ended || r.steps[i].state != StepWaitingForRetry {
		return nil
	}
	r.inflight++
	return []work{{r: r, step: i}}
}

// endState decides, once, whether the task is over: complete when every
// step is, in error when a step failed for good and nothing is in flight.
// Called with mu held.
func (r *run) endState() (TaskState, bool) {
	switch {
	case r.ended:
		return "", false
	case r.left == 0:
		r.ended = true
		return TaskComplete, true
	case r.failed && r.inflight == 0:
		r.ended = true
		return TaskFailed, true
	}
	return "", false
}

// inputField returns the task input's value under key, or nil.
func (r *run) inputField(key string) json.RawMessage {
	r.fieldsOnce.Do(func() { _ = json.Unmarshal(r.input, &r.fields) })
	return r.fields[key]
}

// upstreamResult returns the result of the step named name if it is a
// completed step upstream of step from, directly or transitively.
func (r *run) upstreamResult(from int, name string) json.RawMessage {
	target := slices.IndexFunc(r.specs, func(s *StepSpec) bool { return s.Name == name })
	if target < 0 || !r.upstream(from, target) {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.steps[target].state != StepComplete {
		return nil
	}
	return r.steps[target].result
}

// upstream reports whether step anc is an ancestor of step from, searching
// the dependency graph backwards from from.
func (r *run) upstream(from, anc int) bool {
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
