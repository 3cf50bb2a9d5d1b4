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
func (c *StepContext) Subtask(ctx context.Context, req SubmitRequest) (*Task, error) {
	if !c.bound() || c.sched == nil || c.sched.eng == nil {
		return nil, fmt.Errorf("tasker: sub-task of %s: not in a running attempt", c.StepName())
	}
	return c.sched.eng.subtask(ctx, c, req)
}

// subtask is StepContext.Subtask.
func (e *Engine) subtask(ctx context.Context, c *StepContext, req SubmitRequest) (*Task, error) {
	r, i, parent := c.run, c.spec.index, c.run.id+"/"+c.spec.Name
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

// subtaskOf returns the sub-task a step's audit trail links it to, or "".
func subtaskOf(trail []Transition) string {
	for k := len(trail) - 1; k >= 0; k-- {
		if id, ok := strings.CutPrefix(trail[k].Reason, subtaskReason); ok {
			return id
		}
	}
	return ""
}
