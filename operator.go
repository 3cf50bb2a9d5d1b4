package tasker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gotasker/tasker/store"
)

// Action says who performs an operator action and why. Both are recorded on
// every transition the action makes, in the audit trail; both may be empty.
type Action struct {
	By     string // such as "ops:alice"
	Reason string
}

// Cancel cancels a pending or running task: nothing new starts, running
// handlers' contexts are cancelled with cause ErrTaskCancelled (an attempt
// that then returns an error is recorded as cancelled; one that succeeds is
// recorded as complete), and once none runs, the steps that never started
// or were waiting for a retry become cancelled and so does the task. Cancel
// returns once the cancellation is requested; Wait observes the end. A task
// that has ended cannot be cancelled (ErrIllegalTransition); after Stop,
// Cancel returns ErrEngineStopped.
func (e *Engine) Cancel(ctx context.Context, id string, a Action) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.state == engineStopped {
		return ErrEngineStopped
	}
	if e.state == engineStarted {
		if _, err := e.adopt(ctx, id); err != nil {
			return err
		}
		if e.sched.cancelTask(id, a) {
			return nil
		}
	}
	// Not driven by this engine (not started yet, or its template is not
	// loaded), or just ended: cancel it in the store, if it may be.
	rec, steps, err := e.loadSettled(ctx, id)
	if err != nil {
		return err
	}
	if err := checkTask(id, TaskState(rec.State), TaskCancelled); err != nil {
		return err
	}
	now := time.Now()
	var changes []store.Change
	for _, s := range steps {
		if StepState(s.State).CanMoveTo(StepCancelled) {
			changes = append(changes, a.moveStep(s, StepCancelled, now))
		}
	}
	changes = append(changes, a.moveTask(rec, TaskCancelled, now))
	return e.applyAction(rec, changes)
}

// moveStep returns the change that moves stored step s to state to on a's
// behalf, keeping its attempts, result and last error.
func (a Action) moveStep(s store.Step, to StepState, now time.Time) store.Change {
	return store.Change{TaskID: s.TaskID, Step: s.Name, From: s.State, FromAttempt: s.Attempts,
		To: string(to), Attempt: s.Attempts, Result: s.Result, Error: s.Error,
		At: now, By: a.By, Reason: a.Reason}
}

// moveTask returns the change that moves stored task t to state to on a's
// behalf.
func (a Action) moveTask(t store.Task, to TaskState, now time.Time) store.Change {
	return store.Change{TaskID: t.ID, From: t.State, To: string(to), At: now, By: a.By, Reason: a.Reason}
}

// Retry runs a task that ended in error again: every failed step (those
// its deadline cut off included) goes back to pending with its attempts
// reset, the task to in_progress, and the steps downstream of them run once
// their dependencies complete. Completed steps keep their results and do
// not run again. A task that had a deadline gets a new one, as long from
// the retry as the first was from its submission. A task not in error
// cannot be retried (ErrIllegalTransition), nor one whose steps no longer
// match its template (ErrTemplateMismatch); after Stop, Retry returns
// ErrEngineStopped.
func (e *Engine) Retry(ctx context.Context, id string, a Action) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	rec, steps, err := e.loadForAction(ctx, id)
	if err != nil {
		return err
	}
	if err := checkTask(id, TaskState(rec.State), TaskInProgress); err != nil {
		return err
	}
	if tmpl := e.template(rec.Namespace, rec.Name, rec.Version); tmpl != nil {
		if err := tmpl.matches(steps); err != nil {
			return fmt.Errorf("tasker: retry task %s: %w", id, err)
		}
	}
	now := time.Now()
	start := a.moveTask(rec, TaskInProgress, now)
	start.ResolveDeadLetters = true
	if !rec.Deadline.IsZero() {
		timeout, err := e.timeout(ctx, rec)
		if err != nil {
			return err
		}
		start.Deadline = now.Add(timeout)
	}
	changes := []store.Change{start}
	for _, s := range steps {
		if StepState(s.State) == StepFailed {
			reset := a.moveStep(s, StepPending, now)
			reset.Attempt = 0
			changes = append(changes, reset)
		}
	}
	return e.reopen(ctx, rec, changes)
}

// Resolve marks a failed step of a task that ended in error as
// resolved_manually, like Tasker's manual completion: the step counts as
// complete, result (nil for none; otherwise JSON-encoded like a handler's
// result) is what its dependents read, and once no step of the task is in
// error the task resumes. Only a task in error may be resolved, and only a
// step in error (ErrIllegalTransition); an unknown step is an error
// wrapping ErrStepNotFound; after Stop, Resolve returns ErrEngineStopped.
func (e *Engine) Resolve(ctx context.Context, id, step string, result any, a Action) error {
	var raw json.RawMessage
	if result != nil {
		var err error
		if raw, err = toJSON("result", result); err != nil {
			return fmt.Errorf("tasker: resolve %s/%s: %w", id, step, err)
		}
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	rec, steps, err := e.loadForAction(ctx, id)
	if err != nil {
		return err
	}
	if TaskState(rec.State) != TaskFailed {
		return fmt.Errorf("%w: task %s is %s: only a task in error may be resolved", ErrIllegalTransition, id, rec.State)
	}
	now := time.Now()
	var changes []store.Change
	failing := 0
	for _, s := range steps {
		switch {
		case s.Name == step:
			if err := checkStep(step, StepState(s.State), StepResolvedManually); err != nil {
				return err
			}
			resolved := a.moveStep(s, StepResolvedManually, now)
			resolved.Result = raw
			changes = append(changes, resolved)
		case StepState(s.State) == StepFailed:
			failing++
		}
	}
	if changes == nil {
		return fmt.Errorf("tasker: resolve: task %s: %w: %q", id, ErrStepNotFound, step)
	}
	if failing == 0 {
		resume := a.moveTask(rec, TaskInProgress, now)
		resume.ResolveDeadLetters = true
		changes = append(changes, resume)
	}
	return e.reopen(ctx, rec, changes)
}

// timeout returns how long task rec was given before its deadline: from
// its submission, or from the last time an operator put it back in
// progress (which gave it a new deadline).
func (e *Engine) timeout(ctx context.Context, rec store.Task) (time.Duration, error) {
	trail, err := e.st.Transitions(ctx, rec.ID)
	if err != nil {
		return 0, notFound(rec.ID, err)
	}
	from := rec.CreatedAt
	for _, tr := range trail {
		if tr.Step == "" && tr.From == string(TaskFailed) && tr.To == string(TaskInProgress) {
			from = tr.At
		}
	}
	return rec.Deadline.Sub(from), nil
}

// loadForAction reads a task for Retry or Resolve, which act only on a task
// that no run of this engine drives. Called with e.mu read-locked.
func (e *Engine) loadForAction(ctx context.Context, id string) (store.Task, []store.Step, error) {
	if e.state == engineStopped {
		return store.Task{}, nil, ErrEngineStopped
	}
	rec, steps, err := e.loadSettled(ctx, id)
	if err != nil {
		return rec, steps, err
	}
	if e.sched.lookup(id) != nil {
		return rec, steps, fmt.Errorf("%w: task %s is still running: act on it once it has ended", ErrIllegalTransition, id)
	}
	return rec, steps, nil
}

// reopen applies an operator's changes to a task that no run drives and,
// on a started engine, drives the task again if they put it back in
// progress. Called with e.mu read-locked.
func (e *Engine) reopen(ctx context.Context, rec store.Task, changes []store.Change) error {
	if err := e.applyAction(rec, changes); err != nil {
		return err
	}
	resumed := slices.ContainsFunc(changes, func(ch store.Change) bool {
		return ch.Step == "" && ch.To == string(TaskInProgress)
	})
	if e.state != engineStarted || !resumed {
		return nil // an engine resumes it on Start
	}
	if _, err := e.adopt(ctx, rec.ID); err != nil {
		return fmt.Errorf("tasker: resume task %s: %w", rec.ID, err)
	}
	if e.shared != nil {
		e.shared.poke() // whoever holds its lease runs it, or an engine takes it once the lease expires
	}
	return nil
}

// applyAction writes an operator's changes to task rec. A change the store
// refuses because the task changed meanwhile is ErrIllegalTransition.
func (e *Engine) applyAction(rec store.Task, changes []store.Change) error {
	err := e.sched.applyTo(rec, changes)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("%w: task %s changed meanwhile: %w", ErrIllegalTransition, rec.ID, err)
	}
	return err
}

// loadSettled reads a task and its steps once no run of this engine is
// writing its end: a run that has decided to end is waited for, so an
// operator's changes never race with the engine's last ones.
func (e *Engine) loadSettled(ctx context.Context, id string) (store.Task, []store.Step, error) {
	if _, err := e.sched.awaitEnding(ctx, id); err != nil {
		return store.Task{}, nil, err
	}
	rec, err := e.st.Task(ctx, id)
	if err != nil {
		return store.Task{}, nil, notFound(id, err)
	}
	steps, err := e.st.Steps(ctx, id)
	if err != nil {
		return store.Task{}, nil, notFound(id, err)
	}
	return rec, steps, nil
}
