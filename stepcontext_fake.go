package tasker

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/gotasker/tasker/store"
)

// FakeStep describes a step context for testing a handler without an
// engine or a store: NewStepContext builds it, CallHandler calls a handler
// on it as an engine's worker would. Package taskertest wraps both.
//
// Values (Input, Results, Initialization, Checkpoint) are encoded as the
// engine stores them: a json.RawMessage as it is, anything else with
// json.Marshal.
type FakeStep struct {
	// Spec is the step as its template gives it (Template.Step): its name,
	// initialization, method, retry policy, timeout and result_schema.
	// Nil means a standard step named Name with DefaultRetryPolicy.
	Spec *StepSpec
	// TaskID is the task's ID; "" means "task-1".
	TaskID string
	// Name is the step's name when Spec is nil; "" means "step".
	Name string
	// Input is the task input, a JSON object; nil means {}.
	Input any
	// Results are the results of completed upstream steps, by step name:
	// DependencyResult reads them all, as direct dependencies.
	Results map[string]any
	// Initialization, when not nil, replaces the spec's
	// handler.initialization (a JSON object; "{}" when neither gives one).
	Initialization any
	// Attempt is the attempt's number; 0 means 1.
	Attempt int
	// MaxAttempts, when positive, replaces the retry policy's max_attempts.
	MaxAttempts int
	// Method, when not "", replaces the spec's handler.method ("call").
	Method string
	// Checkpoint, when not nil, is the step's last saved checkpoint, as a
	// retried attempt finds it.
	Checkpoint any
	// BatchCursor, when not nil, makes the step a batch worker of that batch.
	BatchCursor *BatchCursor
	// OnCheckpoint, when not nil, is called with every checkpoint
	// SaveCheckpoint saves, JSON-encoded; an error it returns is
	// SaveCheckpoint's, as a store refusing the write would be. A saved
	// checkpoint is what Checkpoint reads next.
	OnCheckpoint func(json.RawMessage) error
}

// NewStepContext returns a StepContext for f, on which every method works
// as in a running attempt, for unit tests of handlers. Subtask returns an
// error (there is no engine to start one), and BatchResults nil. It is an
// error when a value of f cannot be encoded, when Input is not a JSON
// object, or when Results names the step itself.
func NewStepContext(f FakeStep) (*StepContext, error) {
	input, err := encodeFake("input", f.Input, json.RawMessage("{}"))
	if err == nil && input != nil {
		err = objectOnly(input)
	}
	if err != nil {
		return nil, fmt.Errorf("tasker: fake step: %w", err)
	}
	spec, err := fakeSpec(f)
	if err != nil {
		return nil, err
	}
	t, results, err := fakeTemplate(spec, f.Results)
	if err != nil {
		return nil, err
	}
	checkpoint, err := encodeFake("checkpoint", f.Checkpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("tasker: fake step: %w", err)
	}
	id := cmp.Or(f.TaskID, "task-1")
	r := newRun(context.Background(), &store.Task{ID: id, Namespace: t.Namespace, Name: t.Name, Version: t.Version, Context: input}, t)
	for i, raw := range results {
		r.load(i, store.Step{State: string(StepComplete), Attempts: 1, Result: raw})
	}
	attempt := max(f.Attempt, 1)
	r.load(spec.index, store.Step{State: string(StepInProgress), Attempts: attempt, Checkpoint: checkpoint})
	save := f.OnCheckpoint
	if save == nil {
		save = func(json.RawMessage) error { return nil }
	}
	return &StepContext{run: r, spec: spec, attempt: attempt, onSave: save}, nil
}

// fakeSpec returns the spec of f's step: a copy of f.Spec, or a standard
// step, with f's replacements.
func fakeSpec(f FakeStep) (*StepSpec, error) {
	spec := &StepSpec{Name: cmp.Or(f.Name, "step"), Initialization: json.RawMessage("{}"),
		Retry: DefaultRetryPolicy(), Method: "call", Type: StepStandard}
	if f.Spec != nil {
		cp := *f.Spec
		spec = &cp
	}
	spec.decisionParent, spec.atStart, spec.of, spec.cursor, spec.dependents = -1, true, nil, nil, nil
	init, err := encodeFake("initialization", f.Initialization, spec.Initialization)
	if err != nil {
		return nil, fmt.Errorf("tasker: fake step %s: %w", spec.Name, err)
	}
	spec.Initialization = init
	if f.MaxAttempts > 0 {
		spec.Retry.MaxAttempts = f.MaxAttempts
	}
	spec.Method = cmp.Or(f.Method, spec.Method)
	if f.BatchCursor != nil {
		spec.cursor, _ = json.Marshal(f.BatchCursor) // four plain fields: cannot fail
	}
	return spec, nil
}

// fakeTemplate returns the template of a fake step: the steps of results,
// completed, in name order, then spec, which depends on them all. It
// returns their results encoded, by index.
func fakeTemplate(spec *StepSpec, results map[string]any) (*Template, []json.RawMessage, error) {
	names := slices.Sorted(maps.Keys(results))
	t := &Template{Name: "fake", Namespace: "tasker", Version: "0.0.0", byName: make(map[string]int)}
	raws := make([]json.RawMessage, len(names))
	spec.Dependencies, spec.deps = names, make([]int, len(names))
	for i, name := range names {
		if name == spec.Name {
			return nil, nil, fmt.Errorf("tasker: fake step %s: Results names the step itself", name)
		}
		raw, err := encodeFake("result of "+name, results[name], nil)
		if err != nil {
			return nil, nil, fmt.Errorf("tasker: fake step %s: %w", spec.Name, err)
		}
		raws[i], spec.deps[i] = raw, i
		t.Steps = append(t.Steps, &StepSpec{Name: name, index: i, decisionParent: -1, atStart: true,
			dependents: []int{len(names)}})
		t.byName[name] = i
	}
	spec.index = len(names)
	t.Steps = append(t.Steps, spec)
	t.byName[spec.Name] = spec.index
	return t, raws, nil
}

// encodeFake encodes v as the engine stores it, or returns def for nil.
func encodeFake(what string, v any, def json.RawMessage) (json.RawMessage, error) {
	if v == nil {
		return def, nil
	}
	return toJSON(what, v)
}

// saveFake is SaveCheckpoint on a fake: it hands raw to the fake's saver
// and, once accepted, makes it the step's checkpoint.
func (c *StepContext) saveFake(raw json.RawMessage) error {
	if err := c.onSave(raw); err != nil {
		return fmt.Errorf("tasker: save checkpoint of %s: %w", c.spec.Name, err)
	}
	c.run.checkpointed(c.spec.index, raw)
	return nil
}

// HandlerOutcome is how one attempt of a handler ended, as the engine
// records it: see CallHandler.
type HandlerOutcome struct {
	// State is the step's state after the attempt: complete,
	// waiting_for_retry (a retryable failure with attempts left in the
	// step's policy), error or cancelled; in_progress when the engine would
	// record nothing yet (Pending, or the engine stopping under it).
	State StepState
	// Result is the result as stored, JSON; nil unless the attempt succeeded.
	Result json.RawMessage
	// Failure is the failure as stored; nil when the attempt succeeded.
	Failure *Failure
	// RetryAfter is the delay the handler asked for (StepError.RetryAfter).
	RetryAfter time.Duration
	// Pending reports that the handler returned ErrSubtaskPending.
	Pending bool
}

// CallHandler calls h once on step as an engine's worker does — under the
// step's timeout, on its own goroutine, a panic, a runtime.Goexit and a
// typed-nil error contained, the result encoded and checked against the
// step's result_schema — and returns the outcome the engine would record,
// classified by the engine's own code. step should come from
// NewStepContext; a zero StepContext is classified as NewStepContext's
// default step.
func CallHandler(ctx context.Context, h StepHandler, step *StepContext) HandlerOutcome {
	if step == nil {
		step = &StepContext{}
	}
	var timeout time.Duration
	if step.bound() {
		timeout = step.spec.Timeout
	}
	got := make(chan outcome, 1)
	go func() { got <- invoke(ctx, h, step, timeout, func(out outcome) { got <- out }) }()
	out := <-got
	ho := HandlerOutcome{State: StepInProgress, Result: out.result, Failure: failureView(out.fail),
		RetryAfter: out.retryAfter, Pending: out.parked}
	if out.parked || out.interrupted {
		return ho
	}
	rec := step
	if !rec.bound() {
		rec, _ = NewStepContext(FakeStep{}) // no value to encode: cannot fail
	}
	ch, _ := rec.run.outcomeChange(rec.spec.index, step.attempt, nil, out, time.Now())
	ho.State = StepState(ch.To)
	return ho
}
