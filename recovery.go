package tasker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gotasker/tasker/store"
	"go.uber.org/zap"
)

// recover drives every unfinished task in the store whose template is
// loaded. Steps that were in progress count that attempt as a retryable
// failure, recorded before anything runs again. A task whose steps no
// longer match its template is set aside, in error, and the rest go on.
// Called by Start with e.mu held.
func (e *Engine) recover(ctx context.Context) error {
	recs, err := e.st.ListTasks(ctx, store.Filter{States: unfinished})
	if err != nil {
		return fmt.Errorf("tasker: recover: %w", err)
	}
	n := 0
	for _, rec := range recs {
		driven, err := e.adopt(ctx, rec.ID)
		if err != nil {
			return fmt.Errorf("tasker: recover task %s: %w", rec.ID, err)
		}
		if driven {
			n++
			e.cfg.Logger.Debug("tasker: task recovered", zap.String("task", rec.ID),
				zap.String("template", templateKey(rec)), zap.String("state", rec.State))
		}
	}
	if len(recs) > 0 {
		e.cfg.Logger.Info("tasker: recovered unfinished tasks", zap.Int("found", len(recs)), zap.Int("driven", n))
	}
	return nil
}

// unfinished are the states of a task the engine drives.
var unfinished = []string{string(TaskPending), string(TaskInProgress)}

// adopt makes this engine drive stored task id, unless a run of it does
// already, the task has ended, or its template is not loaded. It reports
// whether a run drives the task now. A task whose steps no longer match its
// template is set aside: it ends in error (see setAside).
//
// On a store that many engines share, only a task this engine holds the
// lease on is adopted; for any other, adopt reports false, and so it does
// when the store refuses the adoption's changes because the lease was lost
// meanwhile (store.ErrLeaseLost): another engine drives the task.
func (e *Engine) adopt(ctx context.Context, id string) (bool, error) {
	if e.shared != nil && !e.shared.holds(id) {
		return e.sched.lookup(id) != nil, nil
	}
	driven, err := e.sched.adopt(id, e.restorer(ctx, id))
	if e.shared != nil && errors.Is(err, store.ErrLeaseLost) {
		return false, nil
	}
	return driven, err
}

// restorer returns adopt's restorer of stored task id.
func (e *Engine) restorer(ctx context.Context, id string) restorer {
	return func(parent context.Context) (*run, []store.Change, error) {
		rec, err := e.st.Task(ctx, id)
		if err != nil {
			return nil, nil, notFound(id, err)
		}
		if st := TaskState(rec.State); st != TaskPending && st != TaskInProgress {
			return nil, nil, nil
		}
		tmpl := e.template(rec.Namespace, rec.Name, rec.Version)
		if tmpl == nil {
			e.cfg.Logger.Warn("tasker: not driving task: its template is not loaded",
				zap.String("task", rec.ID), zap.String("template", templateKey(rec)))
			return nil, nil, nil
		}
		steps, err := e.st.Steps(ctx, id)
		if err != nil {
			return nil, nil, notFound(id, err)
		}
		r, cut, err := restore(parent, rec, steps, tmpl, time.Now())
		if errors.Is(err, ErrTemplateMismatch) {
			return nil, nil, e.setAside(rec, steps, err)
		}
		return r, cut, err
	}
}

// setAside ends a stored task that its loaded template cannot drive (its
// steps were added or removed without a version bump) in error, with code
// TEMPLATE_MISMATCH on the task's transition and on every step that was in
// progress, and logs it.
func (e *Engine) setAside(rec store.Task, steps []store.Step, why error) error {
	e.cfg.Logger.Error("tasker: setting task aside: its steps do not match its template",
		zap.String("task", rec.ID), zap.String("template", templateKey(rec)), zap.Error(why))
	a := Action{By: "engine", Reason: CodeTemplateMismatch + ": " + why.Error()}
	now := time.Now()
	var changes []store.Change
	for _, s := range steps {
		if StepState(s.State) == StepInProgress {
			ch := a.moveStep(s, StepFailed, now)
			ch.Error = &store.Failure{Message: why.Error(), Type: string(ErrorHandler),
				Code: CodeTemplateMismatch, Attempt: s.Attempts}
			changes = append(changes, ch)
		}
	}
	changes = append(changes, a.moveTask(rec, TaskFailed, now))
	if err := e.sched.applyTo(rec, changes); err != nil {
		return fmt.Errorf("set aside after %w: %w", why, err)
	}
	return nil
}

// matches returns an error wrapping ErrTemplateMismatch unless steps could
// be a task of t's: each is one of t's steps, and every step a task has from
// its start is there (the others are created by decisions).
func (t *Template) matches(steps []store.Step) error {
	stored := 0
	for _, s := range steps {
		spec := t.Step(s.Name)
		switch {
		case spec == nil && !t.isWorkerName(s.Name):
			return fmt.Errorf("%w: stored step %q is not in template %s", ErrTemplateMismatch, s.Name, t)
		case spec != nil && spec.atStart:
			stored++
		}
	}
	if want := t.atStart(); stored != want {
		return fmt.Errorf("%w: stored %d of the steps a task starts with, template %s has %d", ErrTemplateMismatch, stored, t, want)
	}
	return nil
}

func templateKey(rec store.Task) string { return rec.Namespace + "/" + rec.Name + "@" + rec.Version }
