package tasker

import (
	"context"
	"fmt"
	"time"

	"github.com/gotasker/tasker/store"
	"go.uber.org/zap"
)

// CodeInterrupted is the failure code of an attempt that was in progress
// when its engine stopped or died; recovery counts it as a retryable failure.
const CodeInterrupted = "INTERRUPTED"

// recover rebuilds the runs of every unfinished task in the store. Steps
// that were in progress count that attempt as a retryable failure, recorded
// before anything runs again. Called by Start with e.mu held.
func (e *Engine) recover(ctx context.Context) ([]*run, error) {
	recs, err := e.st.ListTasks(ctx, store.Filter{States: []string{string(TaskPending), string(TaskInProgress)}})
	if err != nil {
		return nil, fmt.Errorf("tasker: recover: %w", err)
	}
	var runs []*run
	for _, rec := range recs {
		tmpl := e.template(rec.Namespace, rec.Name, rec.Version)
		if tmpl == nil {
			e.cfg.Logger.Warn("tasker: not resuming task: its template is not loaded",
				zap.String("task", rec.ID), zap.String("template", rec.Namespace+"/"+rec.Name+"@"+rec.Version))
			continue
		}
		steps, err := e.st.Steps(ctx, rec.ID)
		if err != nil {
			return nil, fmt.Errorf("tasker: recover task %s: %w", rec.ID, err)
		}
		r, err := e.restore(rec, steps, tmpl, time.Now())
		if err != nil {
			return nil, fmt.Errorf("tasker: recover task %s: %w", rec.ID, err)
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// restore rebuilds one run from its stored steps and durably settles the
// attempts that were cut short.
func (e *Engine) restore(rec store.Task, steps []store.Step, tmpl *Template, now time.Time) (*run, error) {
	r := newRun(rec.ID, tmpl, rec.Context, rec.Deadline)
	r.state = TaskState(rec.State)
	if len(steps) != len(r.steps) {
		return nil, fmt.Errorf("stored %d steps, template %s has %d", len(steps), tmpl, len(r.steps))
	}
	var cut []store.Change
	for _, s := range steps {
		i := tmpl.Step(s.Name)
		if i == nil {
			return nil, fmt.Errorf("step %q is not in template %s", s.Name, tmpl)
		}
		r.load(i.index, s)
		if StepState(s.State) == StepInProgress {
			cut = append(cut, r.interrupted(i.index, now))
		}
	}
	for i := range r.steps {
		r.steps[i].waiting = 0
		for _, d := range r.specs[i].deps {
			if !r.steps[d].state.Done() {
				r.steps[i].waiting++
			}
		}
	}
	if len(cut) == 0 {
		return r, nil
	}
	if err := e.sched.apply(cut); err != nil {
		return nil, err
	}
	for _, ch := range cut {
		r.record(tmpl.Step(ch.Step).index, ch)
	}
	return r, nil
}

// load sets step i to its stored state.
func (r *run) load(i int, s store.Step) {
	r.steps[i] = stepRun{state: StepState(s.State), attempts: s.Attempts,
		result: s.Result, fail: s.Error, nextAt: s.NextAttemptAt}
	switch st := r.steps[i].state; {
	case st.Done():
		r.left--
	case st == StepFailed:
		r.failed = true
	}
}

// interrupted returns the change that ends an attempt cut short by a stop or
// a crash: a retryable failure, retried while the policy allows.
func (r *run) interrupted(i int, now time.Time) store.Change {
	st := r.steps[i]
	fail := &store.Failure{Message: "attempt interrupted: the engine stopped while it ran",
		Type: string(ErrorHandler), Code: CodeInterrupted, Retryable: true, Attempt: st.attempts}
	ch, _ := r.outcomeChange(i, st.attempts, st.fail, outcome{fail: fail}, now)
	return ch
}
