package tasker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gotasker/tasker/store"
)

// Task is what Get, Wait and List report of a task: a snapshot read from the
// store. Its JSON form (snake_case, as Tasker's API) is the one taskerhttp
// serves; zero times and empty lists are left out.
type Task struct {
	ID             string          `json:"id"`
	Namespace      string          `json:"namespace"`
	Name           string          `json:"name"`
	Version        string          `json:"version"`
	State          TaskState       `json:"state"`
	Initiator      string          `json:"initiator"`
	SourceSystem   string          `json:"source_system"`
	Reason         string          `json:"reason"`
	Tags           []string        `json:"tags,omitempty"`
	Context        json.RawMessage `json:"context,omitempty"` // the input, as stored
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	// Owner is the engine (its Config.Owner) holding the task's lease, on
	// a store that many engines share; "" on any other store, and when no
	// engine holds it. A finished task keeps, as a rule, the name of the
	// engine that ended it (one that ended as its engine stopped may show
	// none).
	Owner      string    `json:"owner,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`  // zero until the task is in progress
	FinishedAt time.Time `json:"finished_at,omitzero"` // zero until the task completes or fails
	Deadline   time.Time `json:"deadline,omitzero"`    // zero when it has none (SubmitRequest.Timeout)
	// Steps lists the task's steps in template order; nil from List.
	Steps []Step `json:"steps,omitempty"`
	// Transitions is the task's own audit trail, oldest first; nil from List.
	// Trail merges it with its steps' trails.
	Transitions []Transition `json:"transitions,omitempty"`
}

// Step is a step of a Task.
type Step struct {
	Name          string          `json:"name"`
	State         StepState       `json:"state"`
	Attempts      int             `json:"attempts"`     // attempts started
	MaxAttempts   int             `json:"max_attempts"` // from the template; 0 when the template is not loaded
	Result        json.RawMessage `json:"result,omitempty"`
	LastError     *Failure        `json:"last_error,omitempty"` // the latest failure, even if a later attempt succeeded
	NextAttemptAt time.Time       `json:"next_attempt_at,omitzero"`
	StartedAt     time.Time       `json:"started_at,omitzero"`  // when the latest attempt started
	FinishedAt    time.Time       `json:"finished_at,omitzero"` // when the step completed or failed for good
	Subtask       string          `json:"subtask,omitempty"`    // the ID of the sub-task it started (StepContext.Subtask); "" when none
	Transitions   []Transition    `json:"transitions,omitempty"`
}

// Step returns the step named name, or nil.
func (t *Task) Step(name string) *Step {
	for i := range t.Steps {
		if t.Steps[i].Name == name {
			return &t.Steps[i]
		}
	}
	return nil
}

// Failure is a recorded step failure.
type Failure struct {
	Message   string    `json:"message"`
	Type      ErrorType `json:"type"`
	Code      string    `json:"code,omitempty"`
	Retryable bool      `json:"retryable"`
	Attempt   int       `json:"attempt"`
	Stack     string    `json:"stack,omitempty"` // the handler's stack, when it panicked
}

// Transition is an entry of the audit trail: a task or step moved From one
// state To another at a time, in an attempt.
type Transition struct {
	// Seq is the transition's place in its task's whole trail, the task's
	// and its steps' transitions together, from 1 in the order they were
	// recorded.
	Seq     int       `json:"seq"`
	Step    string    `json:"step,omitempty"` // "" for the task itself
	From    string    `json:"from"`
	To      string    `json:"to"`
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	By      string    `json:"by,omitempty"`     // who, for an operator action
	Reason  string    `json:"reason,omitempty"` // why, when given
	// Error is the failure this transition recorded (a failed attempt, a
	// step the deadline cut off); nil when it recorded none, even if the
	// step still carries an earlier one.
	Error *Failure `json:"error,omitempty"`
}

// Get reads a task with its steps and audit trail. An unknown ID is an error
// wrapping ErrTaskNotFound.
func (e *Engine) Get(ctx context.Context, id string) (*Task, error) {
	snap, err := e.snapshot(ctx, id)
	if err != nil {
		return nil, notFound(id, err)
	}
	tmpl := e.template(snap.Task.Namespace, snap.Task.Name, snap.Task.Version)
	return taskView(snap.Task, snap.Steps, snap.Transitions, tmpl), nil
}

// snapshot reads a task with its steps and transitions, in one read when
// the store is a store.Snapshotter.
func (e *Engine) snapshot(ctx context.Context, id string) (store.Snapshot, error) {
	if sn, ok := e.st.(store.Snapshotter); ok {
		return sn.Snapshot(ctx, id)
	}
	var snap store.Snapshot
	var err error
	if snap.Task, err = e.st.Task(ctx, id); err != nil {
		return snap, err
	}
	if snap.Steps, err = e.st.Steps(ctx, id); err != nil {
		return snap, err
	}
	snap.Transitions, err = e.st.Transitions(ctx, id)
	return snap, err
}

func notFound(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrTaskNotFound, id)
	}
	return fmt.Errorf("tasker: read task %s: %w", id, err)
}

// Wait blocks until the task ends (complete, error or cancelled) and
// returns it, or until ctx ends. It returns ErrEngineStopped if the engine
// stops first. On an engine not started yet it waits for Start. A stored
// task that no run drives (it was written by a Submit whose caller gave up,
// say) is driven from here on; one whose template is not loaded is an
// error.
func (e *Engine) Wait(ctx context.Context, id string) (*Task, error) {
	return e.wait(ctx, id, false)
}

// WaitOutcome is Wait without the audit trail, for callers that want a
// task's end and its steps' results but not its history: the Task it
// returns has no Transitions, and no StartedAt or FinishedAt (the task's or
// its steps'), so Trail is empty. When this engine drove the task to its
// end, it answers from memory, without reading the store; otherwise it
// reads the store as Get does.
func (e *Engine) WaitOutcome(ctx context.Context, id string) (*Task, error) {
	return e.wait(ctx, id, true)
}

func (e *Engine) wait(ctx context.Context, id string, brief bool) (*Task, error) {
	select {
	case <-e.sched.started:
	case <-e.sched.stopped:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	poll := remotePollMin
	for {
		r, err := e.sched.await(ctx, id)
		switch {
		case err == nil:
		case errors.Is(err, ErrEngineStopped) || errors.Is(err, ctx.Err()):
			return nil, err
		case e.shared != nil && errors.Is(err, store.ErrLeaseLost):
			// This engine's run gave the task up with its lease: another
			// engine runs it now (or this one, afresh), read from the store
			// as any task another engine runs.
			r = nil
		default:
			return nil, fmt.Errorf("tasker: task %s abandoned: %w", id, err)
		}
		if brief && r != nil {
			if rec, steps, children, ok := r.final(); ok {
				if e.shared != nil {
					rec.Owner = e.shared.owner // it drove the task to its end
				}
				return briefView(rec, steps, children, r.tmpl), nil
			}
		}
		t, err := e.Get(ctx, id)
		if brief && t != nil {
			t.brief()
		}
		if err != nil || t.State.Ended() {
			return t, err
		}
		if e.isStopped() {
			return nil, ErrEngineStopped
		}
		driven, err := e.adopt(ctx, id)
		switch {
		case err != nil:
			return nil, err
		case driven:
		case e.shared != nil: // another engine runs it, or one will
			if err := e.sched.pause(ctx, &poll); err != nil {
				return nil, err
			}
		default:
			return t, fmt.Errorf("%w: task %s is %s and its template %s/%s@%s is not loaded",
				ErrTemplateNotFound, id, t.State, t.Namespace, t.Name, t.Version)
		}
	}
}

// TaskFilter selects tasks for List. Empty fields match every task.
type TaskFilter struct {
	Namespace    string
	Name         string
	State        TaskState   // one state; States takes several
	States       []TaskState // any of these (and State, when set)
	Initiator    string
	SourceSystem string
	Tags         []string // every one of these
	// After keeps only the tasks created after the task with this ID: pass
	// the last ID of a page to get the next one. An unknown ID matches
	// nothing.
	After string
	Limit int // 0 means no limit
}

// List returns the tasks that match f, oldest first, without their steps and
// transitions.
func (e *Engine) List(ctx context.Context, f TaskFilter) ([]*Task, error) {
	sf := store.Filter{Namespace: f.Namespace, Name: f.Name, Initiator: f.Initiator,
		SourceSystem: f.SourceSystem, Tags: f.Tags, After: f.After, Limit: f.Limit}
	if f.State != "" {
		sf.States = []string{string(f.State)}
	}
	for _, s := range f.States {
		sf.States = append(sf.States, string(s))
	}
	recs, err := e.st.ListTasks(ctx, sf)
	if err != nil {
		return nil, fmt.Errorf("tasker: list tasks: %w", err)
	}
	out := make([]*Task, len(recs))
	for i, rec := range recs {
		out[i] = taskView(rec, nil, nil, nil)
		out[i].Steps, out[i].Transitions = nil, nil
	}
	return out, nil
}

func taskView(rec store.Task, steps []store.Step, trail []store.Transition, tmpl *Template) *Task {
	t := &Task{
		ID: rec.ID, Namespace: rec.Namespace, Name: rec.Name, Version: rec.Version,
		State: TaskState(rec.State), Initiator: rec.Initiator, SourceSystem: rec.SourceSystem,
		Reason: rec.Reason, Tags: rec.Tags, Context: rec.Context, IdempotencyKey: rec.IdempotencyKey, Owner: rec.Owner,
		CreatedAt: rec.CreatedAt, Deadline: rec.Deadline, Steps: make([]Step, len(steps)),
	}
	index := make(map[string]int, len(steps))
	for i, s := range steps {
		t.Steps[i] = Step{Name: s.Name, State: StepState(s.State), Attempts: s.Attempts,
			Result: s.Result, LastError: failureView(s.Error), NextAttemptAt: s.NextAttemptAt}
		if spec := tmplStep(tmpl, s.Name); spec != nil {
			t.Steps[i].MaxAttempts = spec.Retry.Attempts()
		}
		index[s.Name] = i
	}
	t.layOutTrails(trail, index)
	if tmpl != nil && tmpl.dynamic {
		t.Steps = withNotCreated(t.Steps, index, tmpl)
	}
	return t
}

// briefView is taskView of a run's final state (run.final): no trail, each
// step's sub-task from children, which parallels steps.
func briefView(rec store.Task, steps []store.Step, children []string, tmpl *Template) *Task {
	t := taskView(rec, steps, nil, tmpl)
	for i, c := range children {
		if c == "" {
			continue // most steps start no sub-task
		}
		if s := t.Step(steps[i].Name); s != nil {
			s.Subtask = c
		}
	}
	return t
}

// brief drops what WaitOutcome does not report: the trails and the times
// read off them.
func (t *Task) brief() {
	t.Transitions, t.StartedAt, t.FinishedAt = nil, time.Time{}, time.Time{}
	for i := range t.Steps {
		s := &t.Steps[i]
		s.Transitions, s.StartedAt, s.FinishedAt = nil, time.Time{}, time.Time{}
	}
}

// withNotCreated returns steps, the task's stored steps, with the template's
// steps the task does not have, StepNotCreated, each at its template place,
// and a batch worker template's instances in its place.
func withNotCreated(steps []Step, index map[string]int, tmpl *Template) []Step {
	out := make([]Step, 0, len(tmpl.Steps)+len(steps))
	for _, spec := range tmpl.Steps {
		switch i, ok := index[spec.Name]; {
		case ok:
			out = append(out, steps[i])
		case spec.Type == StepBatchWorker:
			for _, s := range steps {
				if tmpl.Step(s.Name) == nil && strings.HasPrefix(s.Name, spec.Name+"_") {
					s.MaxAttempts = spec.Retry.Attempts()
					out = append(out, s)
				}
			}
		default:
			out = append(out, Step{Name: spec.Name, State: StepNotCreated, MaxAttempts: spec.Retry.Attempts()})
		}
	}
	return out
}

// layOutTrails sorts trail into the task's and each step's Transitions,
// noting their times. Every trail is a window of one array, in the order
// the store returned the transitions; index maps step names to positions.
func (t *Task) layOutTrails(trail []store.Transition, index map[string]int) {
	n := len(t.Steps)
	// Slot k < n is step k's trail; slot n the task's.
	slot := func(tr store.Transition) int {
		if tr.Step == "" {
			return n
		}
		if i, ok := index[tr.Step]; ok {
			return i
		}
		return -1
	}
	starts := make([]int, n+2) // slot k is all[starts[k]:starts[k+1]]
	for _, tr := range trail {
		if k := slot(tr); k >= 0 {
			starts[k+1]++
		}
	}
	for k := 1; k < len(starts); k++ {
		starts[k] += starts[k-1]
	}
	all := make([]Transition, starts[n+1])
	next := slices.Clone(starts)
	lastErr := make([]*store.Failure, n+1) // by slot: the failure its previous transition carried
	for i, tr := range trail {
		k := slot(tr)
		if k < 0 {
			continue
		}
		all[next[k]] = Transition{Seq: i + 1, Step: tr.Step, From: tr.From, To: tr.To, Attempt: tr.Attempt,
			At: tr.At, By: tr.By, Reason: tr.Reason}
		if tr.Error != nil && (lastErr[k] == nil || *lastErr[k] != *tr.Error) {
			all[next[k]].Error = failureView(tr.Error)
		}
		lastErr[k] = tr.Error
		next[k]++
		if k == n {
			t.noteTimes(TaskState(tr.To), tr.At)
		} else {
			t.Steps[k].noteTimes(StepState(tr.To), tr.At)
		}
	}
	for i := range t.Steps {
		t.Steps[i].Transitions = window(all, starts[i], starts[i+1])
		t.Steps[i].Subtask = subtaskOf(t.Steps[i].Transitions)
	}
	t.Transitions = window(all, starts[n], starts[n+1])
}

// window returns all[from:to], capped so that appending to it cannot
// overwrite its neighbour, or nil when it is empty.
func window(all []Transition, from, to int) []Transition {
	if from == to {
		return nil
	}
	return all[from:to:to]
}

func (t *Task) noteTimes(to TaskState, at time.Time) {
	switch {
	case to == TaskInProgress:
		t.StartedAt = at
	case to.Ended():
		t.FinishedAt = at
	}
}

func (s *Step) noteTimes(to StepState, at time.Time) {
	switch {
	case to == StepPending: // reset by Retry
		s.StartedAt, s.FinishedAt = time.Time{}, time.Time{}
	case to == StepInProgress:
		s.StartedAt = at
	case to.Ended():
		s.FinishedAt = at
	}
}

func tmplStep(t *Template, name string) *StepSpec {
	if t == nil {
		return nil
	}
	return t.Step(name)
}

func failureView(f *store.Failure) *Failure {
	if f == nil {
		return nil
	}
	return &Failure{Message: f.Message, Type: ErrorType(f.Type), Code: f.Code,
		Retryable: f.Retryable, Attempt: f.Attempt, Stack: f.Stack}
}

// Trail returns the task's whole audit trail, its own transitions and its
// steps' together, in the order they were recorded (by Seq).
func (t *Task) Trail() []Transition {
	out := slices.Clone(t.Transitions)
	for _, s := range t.Steps {
		out = append(out, s.Transitions...)
	}
	slices.SortFunc(out, func(a, b Transition) int { return a.Seq - b.Seq })
	return out
}

// Attempt is one attempt of a step, as its audit trail records it.
type Attempt struct {
	Attempt   int       `json:"attempt"`
	StartedAt time.Time `json:"started_at"`
	// FinishedAt is when the attempt ended; zero while it runs.
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// DurationMS is FinishedAt - StartedAt in milliseconds; 0 while it runs.
	DurationMS float64 `json:"duration_ms"`
	// Outcome is the state the attempt ended in (complete, waiting_for_retry,
	// error, cancelled), or in_progress while it runs.
	Outcome StepState `json:"outcome"`
	Error   *Failure  `json:"error,omitempty"` // why it failed
}

// History returns every attempt of the step, oldest first, from its
// transitions: each starts when the step moves to in_progress and ends with
// the step's next move. Operator actions that start no attempt (a retry's
// reset, a resolution) are in Transitions only.
func (s *Step) History() []Attempt {
	var out []Attempt
	for _, tr := range s.Transitions {
		switch {
		case StepState(tr.To) == StepInProgress:
			out = append(out, Attempt{Attempt: tr.Attempt, StartedAt: tr.At, Outcome: StepInProgress})
		case StepState(tr.From) == StepInProgress && len(out) > 0:
			a := &out[len(out)-1]
			a.FinishedAt, a.Outcome, a.Error = tr.At, StepState(tr.To), tr.Error
			a.DurationMS = float64(tr.At.Sub(a.StartedAt)) / float64(time.Millisecond)
		}
	}
	return out
}
