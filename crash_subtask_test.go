package tasker_test

// The sub-task shape of TestCrashRecovery and TestMultiprocKill, its handler
// and its checks. See crash_test.go.
//
// delegate: after "ask", "delegate" starts a task of the diamond template as
// its sub-task (StepContext.Subtask), with the input crashChildN(n), and
// waits for it; it returns 1 + ask's sum + the sum of the child's last step.
// "answer" follows. The delegate step's handler is called at least twice in
// an attempt that sees its sub-task through: once to start it (it returns
// ErrSubtaskPending), once when it ended (see crashCallsPerAttempt).

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
)

const crashDelegateYAML = `
name: delegate
namespace_name: crash
version: "1.0.0"
description: "ask → delegate, which runs a diamond as its sub-task and waits for it → answer"
steps:
  - name: ask
    handler: {callable: crash.delegate}
    retry: &retry {max_attempts: 100, backoff: constant, backoff_base_ms: 3, max_backoff_ms: 3}
  - {name: delegate, handler: {callable: crash.delegate}, dependencies: [ask], retry: *retry}
  - {name: answer, handler: {callable: crash.delegate}, dependencies: [delegate], retry: *retry}
input_schema:
  type: object
  required: [n]
  properties:
    n: {type: integer}
`

// The steps of the delegate shape, and its sub-task's template and last step.
const (
	crashAsk       = "ask"
	crashDelegate  = "delegate"
	crashAnswer    = "answer"
	crashChildTmpl = "diamond"
	crashChildLast = "send_confirmation"
	crashChildBase = 1_000_000 // a child's n is its parent's plus this
)

// crashChildN is the input n of the sub-task of task n.
func crashChildN(n int) int { return crashChildBase + n }

// crashCallsPerAttempt is how many times the handler of step may be called
// in one attempt: once, but any number of times for the delegate step
// (0): once to start the sub-task and once when it ended, and once more
// each time the sub-task's run was let go and resumed (an engine that lost
// the sub-task's lease wakes the step, which waits again).
func crashCallsPerAttempt(step string) int {
	if step == crashDelegate {
		return 0
	}
	return 1
}

// crashDelegated is the delegate step's result.
type crashDelegated struct {
	crashResult
	Child string `json:"child"` // the sub-task's ID
}

// crashDelegateHandler runs the delegate shape's steps.
func crashDelegateHandler() tasker.HandlerFunc {
	return func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		if err := crashBegin(ctx); err != nil {
			return nil, err
		}
		var in crashInput
		if err := sc.DecodeInput(&in); err != nil {
			return nil, crashPermanent(err.Error())
		}
		switch name := sc.StepName(); name {
		case crashAsk:
			return crashResult{Step: name, Sum: 1 + in.N}, nil
		case crashDelegate:
			return crashDelegateStep(ctx, sc, in.N)
		default:
			r, err := crashDependency(sc, crashDelegate)
			if err != nil {
				return nil, crashPermanent(err.Error())
			}
			return crashResult{Step: name, Sum: 1 + r.Sum}, nil
		}
	}
}

// crashDelegateStep starts the sub-task of task n, or, once it ended,
// returns the sum of its last step.
func crashDelegateStep(ctx context.Context, sc *tasker.StepContext, n int) (any, error) {
	ask, err := crashDependency(sc, crashAsk)
	if err != nil {
		return nil, crashPermanent(err.Error())
	}
	child, err := sc.Subtask(ctx, tasker.SubmitRequest{Namespace: "crash", Name: crashChildTmpl, Version: "1.0.0",
		Context: crashInput{N: crashChildN(n)}, Reason: "crash test: sub-task"})
	if err != nil {
		return nil, err // ErrSubtaskPending, as it is
	}
	var last crashResult
	if s := child.Step(crashChildLast); s == nil || json.Unmarshal(s.Result, &last) != nil || last.Step != crashChildLast {
		return nil, crashPermanent(fmt.Sprintf("sub-task %s: no result of %s", child.ID, crashChildLast))
	}
	return crashDelegated{crashResult{Step: crashDelegate, Sum: 1 + ask.Sum + last.Sum}, child.ID}, nil
}

// delegateTask checks a task of the delegate shape: ask and answer as a
// static shape's steps; delegate completed once with its sub-task's sum,
// after ask, and its sub-task passes subtask's checks.
func (v *crashVerifier) delegateTask(n int, task *tasker.Task, trail []store.Transition, completedAt map[string]int) {
	m := crashChildN(n)
	if s := v.stepOf(task, crashAsk); s != nil {
		v.step(task, s, crashResult{Step: crashAsk, Sum: 1 + n})
	}
	if s := v.stepOf(task, crashDelegate); s != nil {
		v.step(task, s, crashResult{Step: crashDelegate, Sum: 8 + n + 2*m}) // 1 + (1+n) + (6+2m)
		v.order(task, crashDelegate, []string{crashAsk}, trail, completedAt)
		v.subtask(task, s, m)
	}
	if s := v.stepOf(task, crashAnswer); s != nil {
		v.step(task, s, crashResult{Step: crashAnswer, Sum: 9 + n + 2*m})
		v.order(task, crashAnswer, []string{crashDelegate}, trail, completedAt)
	}
	v.stepNames(task, []string{crashAsk, crashDelegate, crashAnswer})
}

// subtask checks the sub-task of task's delegate step s: the step and its
// result name it; it was submitted by the step (its initiator and
// idempotency key say so), is a diamond of input m that passes every check
// of one, and ended before s completed.
func (v *crashVerifier) subtask(task *tasker.Task, s *tasker.Step, m int) {
	t := v.t
	t.Helper()
	var d crashDelegated
	if s.Subtask == "" || json.Unmarshal(s.Result, &d) != nil || d.Child != s.Subtask {
		t.Errorf("task %s: step %s links sub-task %q, its result %s; want one sub-task, named by both", task.ID, s.Name, s.Subtask, s.Result)
		return
	}
	child, err := v.eng.Get(context.Background(), s.Subtask)
	if err != nil {
		t.Errorf("task %s: sub-task %s: %v", task.ID, s.Subtask, err)
		return
	}
	if prev, dup := v.children[child.ID]; dup {
		t.Errorf("sub-task %s belongs to tasks %s and %s", child.ID, prev, task.ID)
	}
	v.children[child.ID] = task.ID
	by := "task:" + task.ID + "/" + s.Name
	if child.Initiator != by || child.IdempotencyKey != "subtask:"+task.ID+"/"+s.Name {
		t.Errorf("task %s: sub-task %s has initiator %q and key %q, want those of %s", task.ID, child.ID, child.Initiator, child.IdempotencyKey, by)
	}
	v.task(v.tmpls[crashChildTmpl], m, child)
	done := completion(s.Transitions)
	if child.FinishedAt.IsZero() || done.IsZero() || done.Before(child.FinishedAt) {
		t.Errorf("task %s: step %s completed at %v, before its sub-task %s ended (at %v)", task.ID, s.Name, done, child.ID, child.FinishedAt)
	}
}
