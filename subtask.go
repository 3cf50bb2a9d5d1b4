package tasker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gotasker/tasker/store"
)

// Subtask starts, once, a task of another template — of any namespace —
// for this step, and returns it once it has ended. The step waits for it
// without holding a worker:
//
//	child, err := step.Subtask(ctx, tasker.SubmitRequest{Namespace: "payments", Name: "process_refund", Context: in})
//	if err != nil {
//		return nil, err // tasker.ErrSubtaskPending while the child runs: return it as it is
//	}
//	return child.Step("issue_refund").Result, nil
//
// The first call submits the child and returns an error wrapping
// ErrSubtaskPending, which the handler returns; when the child ends, the
// engine calls the handler again, in the same attempt, and Subtask returns
// the child. The child is submitted idempotently (its key names this task
// and step), so a retried or recovered attempt finds the same child rather
// than starting a second. A child that ended in error is returned with an
// error wrapping ErrSubtaskFailed, which fails the attempt per the step's
// retry policy; the next attempt retries the child (Engine.Retry), and
// waits for it again. The child's Initiator is "task:<task id>/<step>"
// unless req gives one, and the link is in the step's audit trail (a
// transition with reason "subtask <child id>"). Cancelling this task
// cancels the children its steps wait for.
//
// Once the step is linked to a child, Subtask submits nothing more: it
// waits for or reads that child (a task of another template than the
// child's is a new child). A child that retention (Config.Retention)
// deleted after it ended, before this step read it, took its idempotency
// key with it: Subtask then returns a non-retryable *StepError wrapping
// ErrSubtaskGone, which fails the step for good rather than run the
// sub-workflow a second time; its outcome is unknown.
func (c *StepContext) Subtask(ctx context.Context, req SubmitRequest) (*Task, error) {
	if !c.bound() || c.sched == nil || c.sched.eng == nil {
		return nil, fmt.Errorf("tasker: sub-task of %s: not in a running attempt", c.StepName())
	}
	return c.sched.eng.subtask(ctx, c, req)
}

// subtask is StepContext.Subtask.
func (e *Engine) subtask(ctx context.Context, c *StepContext, req SubmitRequest) (*Task, error) {
	r, i, parent := c.run, c.spec.index, c.run.id+"/"+c.spec.Name
	known, err := e.linkedChild(ctx, r, i)
	if err != nil {
		return nil, fmt.Errorf("tasker: sub-task of %s: %w", c.spec.Name, err)
	}
	if known != "" {
		// The step started a child before: it is waited for or read, and
		// nothing is submitted. A child retention deleted once it ended
		// took its key with it, so a submission would start a second one.
		if e.sched.watch(r, i, known) {
			return nil, fmt.Errorf("%w: %s", ErrSubtaskPending, known)
		}
		child, err := e.Get(ctx, known)
		switch {
		case errors.Is(err, ErrTaskNotFound):
			return nil, subtaskGone(c.spec.Name, known)
		case err != nil:
			return nil, fmt.Errorf("tasker: sub-task of %s: %w", c.spec.Name, err)
		case child.Namespace == req.Namespace && child.Name == req.Name:
			return e.endedChild(ctx, c, child) // the child a submission would find
		}
		// A task of another template than the child's: a new child.
	}
	req.IdempotencyKey = "subtask:" + parent
	if req.Initiator == "" {
		req.Initiator = "task:" + parent
	}
	id, _, err := e.submit(ctx, req, true)
	if err != nil {
		return nil, fmt.Errorf("tasker: sub-task of %s: %w", c.spec.Name, err)
	}
	if r.linked(i, id) {
		if err := e.sched.link(r, i, c.attempt, id); err != nil {
			return nil, err
		}
	}
	if e.sched.watch(r, i, id) {
		return nil, fmt.Errorf("%w: %s", ErrSubtaskPending, id)
	}
	child, err := e.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("tasker: sub-task of %s: %w", c.spec.Name, err)
	}
	return e.endedChild(ctx, c, child)
}

// endedChild is what Subtask returns for child, which no run of this
// engine drives: the child when it completed; when it failed before this
// attempt began, the child retried and waited for again; when it failed
// in this attempt, an error wrapping ErrSubtaskFailed. An unfinished child
// no run drives is driven from here, if its template is loaded.
func (e *Engine) endedChild(ctx context.Context, c *StepContext, child *Task) (*Task, error) {
	switch {
	case child.State == TaskComplete:
		return child, nil
	case child.State == TaskFailed && child.FinishedAt.Before(c.started):
		by := Action{By: "task:" + c.run.id + "/" + c.spec.Name, Reason: "its parent step's attempt " + fmt.Sprint(c.attempt)}
		if err := e.Retry(ctx, child.ID, by); err != nil {
			return nil, fmt.Errorf("tasker: sub-task of %s: retry %s: %w", c.spec.Name, child.ID, err)
		}
	case child.State.Ended():
		return child, fmt.Errorf("%w: %s is %s", ErrSubtaskFailed, child.ID, child.State)
	default:
		driven, err := e.adopt(ctx, child.ID)
		if err == nil && !driven && e.shared != nil {
			// Another engine of the shared store runs the child (or
			// will): its end is read from the store.
			e.sched.watchRemote(c.run, c.spec.index, child.ID, remotePollMin)
			return nil, fmt.Errorf("%w: %s", ErrSubtaskPending, child.ID)
		}
		if err != nil || !driven {
			return nil, fmt.Errorf("tasker: sub-task of %s: %s is %s and cannot be driven: %w", c.spec.Name, child.ID, child.State,
				errors.Join(err, ErrTemplateNotFound))
		}
	}
	if e.sched.watch(c.run, c.spec.index, child.ID) {
		return nil, fmt.Errorf("%w: %s", ErrSubtaskPending, child.ID)
	}
	latest, err := e.Get(ctx, child.ID) // it ended meanwhile
	switch {
	case err != nil:
		return nil, err
	case latest.State != TaskComplete:
		return latest, fmt.Errorf("%w: %s is %s", ErrSubtaskFailed, latest.ID, latest.State)
	}
	return latest, nil
}

// linkedChild returns the sub-task step i of r started before, or "" when
// it started none: from the run's memory or, once per run restored from
// the store that a step calls Subtask in, from the task's stored audit
// trail (the one read on this path; ordinary steps never pay it).
func (e *Engine) linkedChild(ctx context.Context, r *run, i int) (string, error) {
	if child, known := r.childOf(i); known {
		return child, nil
	}
	trail, err := e.st.Transitions(ctx, r.id)
	if err != nil {
		return "", fmt.Errorf("read the audit trail of %s: %w", r.id, err)
	}
	r.learnLinks(links(trail))
	child, _ := r.childOf(i)
	return child, nil
}

// subtaskGone is Subtask's error for step, linked to sub-task child, which
// the store no longer has: a permanent failure, as another attempt would
// start a second child.
func subtaskGone(step, child string) error {
	return &StepError{Type: ErrorPermanent, Code: CodeSubtaskGone, Err: ErrSubtaskGone,
		Message: fmt.Sprintf("sub-task %s of step %s was deleted (by retention) after it ended, so its outcome is unknown: "+
			"not starting another, which would run it twice", child, step)}
}

// watchRemote wakes step i of parent, parked for its sub-task child, once
// the store says child ended, reading it every d, doubling to a second:
// on a store many engines share, the child may run on another engine.
// It stops when the parent's run ends.
func (s *scheduler) watchRemote(parent *run, i int, child string, d time.Duration) {
	s.after(d, func() {
		if parent.isEnded() {
			return
		}
		rec, err := s.st.Task(s.handlerCtx, child)
		switch {
		case err == nil && TaskState(rec.State).Ended(), errors.Is(err, store.ErrNotFound):
			s.push(parent.wake(i)...)
		default:
			s.watchRemote(parent, i, child, min(2*d, time.Second))
		}
	})
}

// link records in the audit trail of step i of r, in attempt, that it
// started sub-task child.
func (s *scheduler) link(r *run, i, attempt int, child string) error {
	if err := s.note(r, i, attempt, nil, subtaskReason+child); err != nil {
		return fmt.Errorf("tasker: sub-task of %s: record the link: %w", r.spec(i).Name, err)
	}
	return nil
}

// subtaskReason starts the reason of the transition that links a step to
// its sub-task.
const subtaskReason = "subtask "

// links returns the sub-task each step of a task's stored audit trail
// links it to (the last, as subtaskOf), by step name.
func links(trail []store.Transition) map[string]string {
	var out map[string]string
	for _, tr := range trail {
		if id, ok := strings.CutPrefix(tr.Reason, subtaskReason); ok && tr.Step != "" {
			if out == nil {
				out = make(map[string]string)
			}
			out[tr.Step] = id
		}
	}
	return out
}

// subtaskOf returns the sub-task a step's audit trail links it to, or "".
func subtaskOf(trail []Transition) string {
	for k := len(trail) - 1; k >= 0; k-- {
		if id, ok := strings.CutPrefix(trail[k].Reason, subtaskReason); ok {
			return id
		}
	}
	return ""
}
