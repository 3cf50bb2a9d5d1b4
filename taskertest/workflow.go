package taskertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/memory"
)

// Workflow runs a whole template in memory: a tasker.Engine on a
// store/memory store, with one worker, so that steps run one at a time in
// an order that depends only on the template and the outcomes, and with
// tasker.Config.RetryDelay making every retry instant.
type Workflow struct {
	// Template is the template to run.
	Template *tasker.Template
	// Handlers are the real handlers, by callable (handler.callable).
	Handlers map[string]tasker.StepHandler
	// Stubs replace the handlers of some steps, by step name; a batch
	// worker template's stub serves all its instances. Every step needs a
	// stub or a handler for its callable.
	Stubs map[string]tasker.StepHandler
}

// Run submits one task of the template with input as its task input, waits
// for it to end and returns its report. The error is the set-up's (a
// missing handler, a stub of no step, input the input_schema refuses) or
// ctx's, if it ends first; a task that fails is a report, not an error.
func (w Workflow) Run(ctx context.Context, input any) (rep *Report, err error) {
	if w.Template == nil {
		return nil, errors.New("taskertest: Workflow needs a Template")
	}
	st := memory.New()
	defer st.Close()
	eng, err := tasker.New(st, &tasker.Config{Workers: 1, RetryDelay: instant})
	if err != nil {
		return nil, err
	}
	if err := w.register(eng); err != nil {
		return nil, err
	}
	if err := eng.AddTemplates(w.Template); err != nil {
		return nil, err
	}
	if err := eng.Start(ctx); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, eng.Stop(ctx)) }()
	t := w.Template
	id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: t.Namespace, Name: t.Name, Version: t.Version,
		Context: input, Initiator: "taskertest"})
	if err != nil {
		return nil, err
	}
	task, err := eng.Wait(ctx, id)
	if err != nil {
		return nil, err
	}
	return newReport(task), nil
}

// instant is the RetryDelay of a Workflow: no retry waits.
func instant(time.Duration) time.Duration { return 0 }

// register registers, for each callable of the template, a handler that
// calls the stub of the step it runs for, or else the real handler.
func (w Workflow) register(eng *tasker.Engine) error {
	var errs []error
	for name := range w.Stubs {
		if w.Template.Step(name) == nil {
			errs = append(errs, fmt.Errorf("taskertest: a stub for %q, which is no step of %s", name, w.Template))
		}
	}
	seen := make(map[string]bool)
	for _, s := range w.Template.Steps {
		h := w.Handlers[s.Callable]
		if h == nil && w.Stubs[s.Name] == nil {
			errs = append(errs, fmt.Errorf("%w: step %s: no stub, and no handler for callable %q",
				tasker.ErrHandlerNotRegistered, s.Name, s.Callable))
		}
		if seen[s.Callable] {
			continue
		}
		seen[s.Callable] = true
		errs = append(errs, eng.Register(s.Callable, tasker.HandlerFunc(func(ctx context.Context, step *tasker.StepContext) (any, error) {
			if stub := w.stub(step.StepName()); stub != nil {
				return stub.Call(ctx, step)
			}
			return h.Call(ctx, step)
		})))
	}
	return errors.Join(errs...)
}

// stub returns the stub of the step named name, a template step or a
// batch worker instance ("{worker template}_{batch id}"), or nil.
func (w Workflow) stub(name string) tasker.StepHandler {
	if h := w.Stubs[name]; h != nil {
		return h
	}
	for _, s := range w.Template.Steps {
		if s.Type == tasker.StepBatchWorker && strings.HasPrefix(name, s.Name+"_") {
			return w.Stubs[s.Name]
		}
	}
	return nil
}

// Report is what a Workflow's run came to.
type Report struct {
	// Task is the task as the engine read it at its end: its state, its
	// steps with their results and last errors, its audit trail.
	Task *tasker.Task
	// Attempts lists every attempt of every step, in the order they
	// started.
	Attempts []Attempt
}

// Attempt is one attempt of a step in a Report.
type Attempt struct {
	Step    string
	Attempt int // counted from 1
	// Outcome is the state the attempt ended in: complete,
	// waiting_for_retry, error or cancelled.
	Outcome tasker.StepState
	Result  json.RawMessage // the step's result, on the attempt that completed it
	Error   *tasker.Failure // the attempt's failure; nil when it had none
}

// String returns "step#attempt:outcome".
func (a Attempt) String() string { return fmt.Sprintf("%s#%d:%s", a.Step, a.Attempt, a.Outcome) }

// State returns the task's final state.
func (r *Report) State() tasker.TaskState { return r.Task.State }

// Ran returns every attempt as "step#attempt:outcome", in the order they
// started.
func (r *Report) Ran() []string {
	out := make([]string, len(r.Attempts))
	for i, a := range r.Attempts {
		out[i] = a.String()
	}
	return out
}

// newReport reads the attempts of task from its audit trail, in the
// order the engine recorded them.
func newReport(task *tasker.Task) *Report {
	rep := &Report{Task: task}
	open := make(map[string]int) // step → index in Attempts of its running attempt
	for _, tr := range task.Trail() {
		from, to := tasker.StepState(tr.From), tasker.StepState(tr.To)
		switch {
		case tr.Step == "" || from == to:
		case to == tasker.StepInProgress:
			open[tr.Step] = len(rep.Attempts)
			rep.Attempts = append(rep.Attempts, Attempt{Step: tr.Step, Attempt: tr.Attempt, Outcome: to})
		case from == tasker.StepInProgress:
			i, ok := open[tr.Step]
			if !ok {
				continue // an attempt begun before this engine's run: none here
			}
			delete(open, tr.Step)
			a := &rep.Attempts[i]
			a.Outcome, a.Error = to, tr.Error
			if to == tasker.StepComplete {
				a.Result = task.Step(tr.Step).Result
			}
		}
	}
	return rep
}

// Returns is a stub that returns v.
func Returns(v any) tasker.StepHandler {
	return tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) { return v, nil })
}

// FailFirst is a stub whose first n attempts of a step fail with err and
// whose later ones return v: with a retryable err and enough attempts in
// the step's policy, the step completes at attempt n+1.
func FailFirst(n int, err error, v any) tasker.StepHandler {
	return tasker.HandlerFunc(func(_ context.Context, step *tasker.StepContext) (any, error) {
		if step.Attempt() <= n {
			return nil, err
		}
		return v, nil
	})
}
