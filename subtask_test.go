package tasker_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
)

// The guide's cross-namespace workflow: customer success delegates the
// refund to a task of the payments namespace.
const (
	refundParentYAML = `
name: process_refund
namespace_name: customer_success
version: "1.0.0"
steps:
  - {name: validate_request, handler: {callable: cs.validate}}
  - name: delegate_refund
    dependencies: [validate_request]
    handler: {callable: cs.delegate}
    retry: {max_attempts: 2, backoff: constant, backoff_base_ms: 1}
  - {name: notify_customer, dependencies: [delegate_refund], handler: {callable: cs.notify}}
`
	refundChildYAML = `
name: process_refund
namespace_name: payments
version: "2.1.0"
steps:
  - {name: check_balance, handler: {callable: pay.check}}
  - {name: issue_refund, dependencies: [check_balance], handler: {callable: pay.issue}, retry: {max_attempts: 1}}
`
)

// refundWorld runs the two templates' handlers; issue decides the child's
// refund step.
type refundWorld struct {
	issue  func(ctx context.Context, calls int32) (any, error)
	issued atomic.Int32
}

func (w *refundWorld) handlers() map[string]tasker.StepHandler {
	return map[string]tasker.StepHandler{
		"cs.validate": echoStep("validate_request"),
		"cs.delegate": tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
			var in map[string]any
			if err := sc.DecodeInput(&in); err != nil {
				return nil, err
			}
			child, err := sc.Subtask(ctx, tasker.SubmitRequest{Namespace: "payments", Name: "process_refund", Context: in})
			if err != nil {
				return nil, err
			}
			return map[string]any{"refund_task": child.ID, "refund": child.Step("issue_refund").Result}, nil
		}),
		"cs.notify": echoStep("notify_customer"),
		"pay.check": echoStep("check_balance"),
		"pay.issue": tasker.HandlerFunc(func(ctx context.Context, _ *tasker.StepContext) (any, error) {
			return w.issue(ctx, w.issued.Add(1))
		}),
	}
}

func startRefunds(t *testing.T, st store.Store, w *refundWorld) *tasker.Engine {
	t.Helper()
	eng, err := tasker.New(st, &tasker.Config{Workers: 1}) // one worker: a waiting parent must not hold it
	if err != nil {
		t.Fatal(err)
	}
	registerAll(t, eng, w.handlers())
	if err := eng.AddTemplates(mustParse(t, refundParentYAML), mustParse(t, refundChildYAML)); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Stop(context.Background()) })
	return eng
}

func submitRefund(t *testing.T, eng *tasker.Engine) *tasker.Task {
	t.Helper()
	return submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "customer_success", Name: "process_refund",
		Context: map[string]any{"order": "o-1", "amount": 42}})
}

// TestSubtaskAcrossNamespaces: a step delegates to a task of another
// namespace and waits for it without holding the only worker; the child's
// result reaches the parent, and the link is recorded both ways.
func TestSubtaskAcrossNamespaces(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		w := &refundWorld{issue: func(context.Context, int32) (any, error) { return map[string]any{"refunded": 42}, nil }}
		eng := startRefunds(t, st, w)
		task := submitRefund(t, eng)
		if task.State != tasker.TaskComplete {
			t.Fatalf("parent: %s, want complete", stateOf(task, nil))
		}
		d := step(t, task, "delegate_refund")
		if d.Attempts != 1 || d.Subtask == "" {
			t.Fatalf("delegate_refund: %d attempts, sub-task %q; want 1 attempt linked to a child", d.Attempts, d.Subtask)
		}
		child, err := eng.Get(context.Background(), d.Subtask)
		if err != nil || child.State != tasker.TaskComplete || child.Namespace != "payments" {
			t.Fatalf("child: %s", stateOf(child, err))
		}
		if want := "task:" + task.ID + "/delegate_refund"; child.Initiator != want {
			t.Errorf("child's initiator %q, want %q", child.Initiator, want)
		}
		if got, want := string(d.Result), `{"refund":{"refunded":42},"refund_task":"`+child.ID+`"}`; got != want {
			t.Errorf("delegate_refund's result %s, want %s", got, want)
		}
		checkAfter(t, task, "delegate_refund", "notify_customer")
		if n := w.issued.Load(); n != 1 {
			t.Errorf("the child's refund ran %d times, want once", n)
		}
	})
}

// TestSubtaskFailureRetried: a child that fails fails the parent step; the
// step's retry retries the same child (never a second one), which then
// completes; a child that fails again fails the parent task.
func TestSubtaskFailureRetried(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failUntil int32
		want      tasker.TaskState
	}{{"recovers", 1, tasker.TaskComplete}, {"fails again", 2, tasker.TaskFailed}} {
		t.Run(tc.name, func(t *testing.T) {
			w := &refundWorld{issue: func(_ context.Context, n int32) (any, error) {
				if n <= tc.failUntil {
					return nil, &tasker.StepError{Message: "card expired", Type: tasker.ErrorPermanent}
				}
				return "refunded", nil
			}}
			eng := startRefunds(t, newMemory(t), w)
			task := submitRefund(t, eng)
			if task.State != tc.want {
				t.Fatalf("parent: %s, want %s", stateOf(task, nil), tc.want)
			}
			d := step(t, task, "delegate_refund")
			if d.Attempts != 2 || w.issued.Load() != 2 {
				t.Errorf("delegate_refund: %d attempts, child's refund ran %d times; want 2 and 2", d.Attempts, w.issued.Load())
			}
			children, err := eng.List(context.Background(), tasker.TaskFilter{Namespace: "payments"})
			if err != nil || len(children) != 1 {
				t.Errorf("children %v, %v; want exactly one", len(children), err)
			}
			if tc.want == tasker.TaskFailed && (d.LastError == nil || d.LastError.Attempt != 2) {
				t.Errorf("delegate_refund's last error %+v, want attempt 2's", d.LastError)
			}
		})
	}
}

// TestSubtaskCancelledWithParent: cancelling a parent waiting for its child
// cancels the child too.
func TestSubtaskCancelledWithParent(t *testing.T) {
	running := make(chan struct{}, 1)
	w := &refundWorld{issue: func(ctx context.Context, _ int32) (any, error) {
		running <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	eng := startRefunds(t, newMemory(t), w)
	ctx := context.Background()
	id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "customer_success", Name: "process_refund", Context: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	<-running
	if err := eng.Cancel(ctx, id, tasker.Action{By: "ops:alice", Reason: "customer withdrew"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	parent, err := eng.Wait(ctx, id)
	if err != nil || parent.State != tasker.TaskCancelled {
		t.Fatalf("parent: %s, want cancelled", stateOf(parent, err))
	}
	d := step(t, parent, "delegate_refund")
	if d.State != tasker.StepCancelled || d.Subtask == "" {
		t.Fatalf("delegate_refund: %s, sub-task %q; want cancelled, linked", d.State, d.Subtask)
	}
	child, err := eng.Wait(ctx, d.Subtask)
	if err != nil || child.State != tasker.TaskCancelled {
		t.Errorf("child: %s, want cancelled", stateOf(child, err))
	}
	if errors.Is(err, tasker.ErrSubtaskPending) {
		t.Errorf("Wait leaked ErrSubtaskPending")
	}
}
