package tasker_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/store"
)

// blockUntilCancelled is a handler that announces it started, then waits
// for its context and returns its cause.
func blockUntilCancelled(started chan<- struct{}, cause *atomic.Value) tasker.HandlerFunc {
	return func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		cause.Store(context.Cause(ctx))
		return nil, context.Cause(ctx)
	}
}

func TestCancelDuringParallelBranch(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		started := make(chan struct{}, 2)
		var payCause, invCause atomic.Value
		handlers := orderHandlers(orders.Handlers{})
		handlers[orders.ProcessPaymentCallable] = blockUntilCancelled(started, &payCause)
		handlers[orders.UpdateInventoryCallable] = blockUntilCancelled(started, &invCause)
		eng := startEngine(t, st, handlers, ordersTemplate(t))
		ctx := context.Background()
		id, err := eng.Submit(ctx, orderRequest(guideInput(orders.TokenSuccess)))
		if err != nil {
			t.Fatal(err)
		}
		<-started
		<-started
		if err := eng.Cancel(ctx, id, tasker.Action{By: "ops:alice", Reason: "customer called"}); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		task, err := eng.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if task.State != tasker.TaskCancelled {
			t.Fatalf("task = %s, want cancelled", task.State)
		}
		for _, c := range []*atomic.Value{&payCause, &invCause} {
			if cause, _ := c.Load().(error); !errors.Is(cause, tasker.ErrTaskCancelled) {
				t.Errorf("handler's context cause = %v, want ErrTaskCancelled", cause)
			}
		}
		want := map[string]struct {
			state    tasker.StepState
			attempts int
		}{
			"validate_cart": {tasker.StepComplete, 1}, "process_payment": {tasker.StepCancelled, 1},
			"update_inventory": {tasker.StepCancelled, 1}, "create_order": {tasker.StepCancelled, 0},
			"send_confirmation": {tasker.StepCancelled, 0},
		}
		for name, w := range want {
			if s := step(t, task, name); s.State != w.state || s.Attempts != w.attempts {
				t.Errorf("%s: %s after %d attempts, want %s after %d", name, s.State, s.Attempts, w.state, w.attempts)
			}
		}
		last := task.Transitions[len(task.Transitions)-1]
		if last.To != "cancelled" || last.By != "ops:alice" || last.Reason != "customer called" {
			t.Errorf("task's last transition = %+v, want cancelled by ops:alice", last)
		}
		if tr := step(t, task, "create_order").Transitions; len(tr) != 1 || tr[0].By != "ops:alice" {
			t.Errorf("create_order transitions = %+v, want one, by ops:alice", tr)
		}
		if err := eng.Cancel(ctx, id, tasker.Action{}); !errors.Is(err, tasker.ErrIllegalTransition) {
			t.Errorf("cancelling a cancelled task = %v, want ErrIllegalTransition", err)
		}
	})
}

// flakyPayment declines the first payment it sees, then succeeds.
func flakyPayment(calls *atomic.Int32) tasker.HandlerFunc {
	var h orders.Handlers
	return func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		if calls.Add(1) == 1 {
			return nil, &tasker.StepError{Message: "declined", Type: tasker.ErrorPermanent, Code: "PAYMENT_DECLINED"}
		}
		return h.ProcessPayment(ctx, sc)
	}
}

// countCalls wraps h, counting its calls.
func countCalls(h tasker.HandlerFunc, n *atomic.Int32) tasker.HandlerFunc {
	return func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		n.Add(1)
		return h(ctx, sc)
	}
}

// TestRetryAfterPermanentFailureOnNewEngine fails a payment for good, stops
// the engine, and retries the task on a new engine over the same store.
func TestRetryAfterPermanentFailureOnNewEngine(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		var payCalls, cartCalls atomic.Int32
		handlers := orderHandlers(orders.Handlers{})
		handlers[orders.ProcessPaymentCallable] = flakyPayment(&payCalls)
		handlers[orders.ValidateCartCallable] = countCalls(orders.ValidateCart, &cartCalls)
		first, err := tasker.New(st, nil)
		if err != nil {
			t.Fatal(err)
		}
		registerAll(t, first, handlers)
		first.AddTemplates(ordersTemplate(t))
		first.Start(context.Background())
		id, _ := first.Submit(context.Background(), orderRequest(guideInput(orders.TokenSuccess)))
		failed, err := first.Wait(context.Background(), id)
		if err != nil || failed.State != tasker.TaskFailed {
			t.Fatalf("first run: %v; want error", stateOf(failed, err))
		}
		first.Stop(context.Background())

		eng := startEngine(t, st, handlers, ordersTemplate(t))
		if err := eng.Retry(context.Background(), id, tasker.Action{By: "ops:bob", Reason: "card fixed"}); err != nil {
			t.Fatalf("Retry: %v", err)
		}
		task, err := eng.Wait(context.Background(), id)
		if err != nil || task.State != tasker.TaskComplete {
			t.Fatalf("after Retry: %v; want complete", stateOf(task, err))
		}
		p := step(t, task, "process_payment")
		if p.Attempts != 1 || cartCalls.Load() != 1 || payCalls.Load() != 2 {
			t.Errorf("payment attempts %d (want 1 after reset), validate_cart ran %d times (want 1), payment %d (want 2)",
				p.Attempts, cartCalls.Load(), payCalls.Load())
		}
		wantTrail(t, p.Transitions, "process_payment", "pending>in_progress", "in_progress>error",
			"error>pending", "pending>in_progress", "in_progress>complete")
		if tr := p.Transitions[2]; tr.By != "ops:bob" || tr.Reason != "card fixed" {
			t.Errorf("reset transition = %+v, want by ops:bob", tr)
		}
		wantTrail(t, task.Transitions, "", "pending>in_progress", "in_progress>error", "error>in_progress", "in_progress>complete")
		if err := eng.Retry(context.Background(), id, tasker.Action{}); !errors.Is(err, tasker.ErrIllegalTransition) {
			t.Errorf("retrying a complete task = %v, want ErrIllegalTransition", err)
		}
	})
}

func registerAll(t *testing.T, eng *tasker.Engine, handlers map[string]tasker.StepHandler) {
	t.Helper()
	for name, h := range handlers {
		if err := eng.Register(name, h); err != nil {
			t.Fatal(err)
		}
	}
}

func TestResolveFailedStepWithResult(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := startEngine(t, st, orderHandlers(orders.Handlers{}), ordersTemplate(t))
		ctx := context.Background()
		failed := submitAndWait(t, eng, orderRequest(guideInput(orders.TokenDeclined)))
		if failed.State != tasker.TaskFailed {
			t.Fatalf("task = %s, want error", failed.State)
		}
		if err := eng.Resolve(ctx, failed.ID, "validate_cart", nil, tasker.Action{}); !errors.Is(err, tasker.ErrIllegalTransition) {
			t.Errorf("resolving a complete step = %v, want ErrIllegalTransition", err)
		}
		manual := orders.Payment{PaymentID: "pay_manual", TransactionID: "txn_phone", AmountCharged: 118.77, Status: "completed"}
		if err := eng.Resolve(ctx, failed.ID, "process_payment", manual, tasker.Action{By: "ops:carol", Reason: "paid by phone"}); err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		task, err := eng.Wait(ctx, failed.ID)
		if err != nil || task.State != tasker.TaskComplete {
			t.Fatalf("after Resolve: %v; want complete", stateOf(task, err))
		}
		p := step(t, task, "process_payment")
		if p.State != tasker.StepResolvedManually || p.Attempts != 1 {
			t.Errorf("process_payment: %s after %d attempts, want resolved_manually after 1", p.State, p.Attempts)
		}
		var order orders.Order
		decodeResult(t, task, "create_order", &order)
		if order.PaymentID != "pay_manual" || order.TransactionID != "txn_phone" {
			t.Errorf("create_order read payment %q/%q, want the resolved result", order.PaymentID, order.TransactionID)
		}
		if tr := p.Transitions[len(p.Transitions)-1]; tr.To != "resolved_manually" || tr.By != "ops:carol" || tr.Reason != "paid by phone" {
			t.Errorf("resolve transition = %+v", tr)
		}
	})
}

func TestCancelBeforeStart(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng, err := tasker.New(st, nil)
		if err != nil {
			t.Fatal(err)
		}
		eng.AddTemplates(ordersTemplate(t))
		ctx := context.Background()
		id, err := eng.Submit(ctx, orderRequest(guideInput(orders.TokenSuccess)))
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Cancel(ctx, id, tasker.Action{By: "ops"}); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		task, err := eng.Get(ctx, id)
		if err != nil || task.State != tasker.TaskCancelled {
			t.Fatalf("task: %v; want cancelled", stateOf(task, err))
		}
		for _, s := range task.Steps {
			if s.State != tasker.StepCancelled || s.Attempts != 0 {
				t.Errorf("%s: %s after %d attempts, want cancelled, never run", s.Name, s.State, s.Attempts)
			}
		}
	})
}

const slowStep = `
name: slow
namespace_name: test
version: "1.0.0"
steps:
  - name: slow
    handler: {callable: test.slow}
    timeout_seconds: %s
    retry: {max_attempts: 2, backoff: constant, backoff_base_ms: 1}
  - name: after
    handler: {callable: test.after}
    dependencies: [slow]
`

// slowFirst blocks its first attempt until the context ends, then succeeds.
func slowFirst(cause *atomic.Value) tasker.HandlerFunc {
	return func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		if sc.Attempt() == 1 {
			<-ctx.Done()
			cause.Store(context.Cause(ctx))
			return nil, ctx.Err()
		}
		return "fast", nil
	}
}

func TestStepTimeoutRetriedThenSucceeds(t *testing.T) {
	for _, c := range []struct {
		name    string
		seconds string
		cfg     tasker.Config
	}{
		{"template timeout_seconds", "1", tasker.Config{}},
		{"engine default", "0", tasker.Config{StepTimeout: 50 * time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cause atomic.Value
			eng, err := tasker.New(newMemory(t), &c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			registerAll(t, eng, map[string]tasker.StepHandler{"test.slow": slowFirst(&cause), "test.after": echoStep("after")})
			eng.AddTemplates(mustParse(t, fmtTemplate(slowStep, c.seconds)))
			eng.Start(context.Background())
			defer eng.Stop(context.Background())
			task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "slow"})
			s := step(t, task, "slow")
			if task.State != tasker.TaskComplete || s.Attempts != 2 || string(s.Result) != `"fast"` {
				t.Fatalf("task %s, slow: %d attempts, result %s; want complete on attempt 2", task.State, s.Attempts, s.Result)
			}
			if e := s.LastError; e == nil || e.Type != tasker.ErrorTimeout || e.Code != tasker.CodeTimeout || !e.Retryable || e.Attempt != 1 {
				t.Errorf("last error = %+v, want the retryable timeout of attempt 1", e)
			}
			if got, _ := cause.Load().(error); !errors.Is(got, tasker.ErrStepTimeout) {
				t.Errorf("handler's context ended with cause %v", got)
			}
		})
	}
}

func TestTaskDeadline(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		var cause atomic.Value
		eng := startEngine(t, st, map[string]tasker.StepHandler{
			"test.slow": slowFirst(&cause), "test.after": echoStep("after"),
		}, mustParse(t, fmtTemplate(slowStep, "0")))
		task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "slow", Timeout: 100 * time.Millisecond})
		if task.State != tasker.TaskFailed {
			t.Fatalf("task = %s, want error", task.State)
		}
		s := step(t, task, "slow")
		if s.State != tasker.StepFailed || s.Attempts != 1 || s.LastError == nil || s.LastError.Code != tasker.CodeTaskDeadline {
			t.Errorf("slow: %s after %d attempts, error %+v; want error TASK_DEADLINE after 1", s.State, s.Attempts, s.LastError)
		}
		if got, _ := cause.Load().(error); !errors.Is(got, tasker.ErrTaskDeadline) {
			t.Errorf("handler's context cause = %v, want ErrTaskDeadline", got)
		}
		// A step the deadline cut off ends with its task, in the same write.
		if a := step(t, task, "after"); a.State != tasker.StepFailed || a.Attempts != 0 ||
			a.LastError == nil || a.LastError.Code != tasker.CodeTaskDeadline {
			t.Errorf("after: %s, %d attempts, error %+v; want error TASK_DEADLINE, never started", a.State, a.Attempts, a.LastError)
		}
		if last := task.Transitions[len(task.Transitions)-1]; last.Reason != "task deadline exceeded" {
			t.Errorf("task's last transition = %+v", last)
		}
		if got := task.FinishedAt.Sub(task.CreatedAt); got < 100*time.Millisecond {
			t.Errorf("task ended %v after creation, before its deadline", got)
		}
	})
}

// TestCancelRacingTheEnd cancels tasks at the moment they end: each cancel
// either wins (the task is cancelled) or finds the task ended
// (ErrIllegalTransition); no task is left half-changed or abandoned.
func TestCancelRacingTheEnd(t *testing.T) {
	eng := startEngine(t, newMemory(t), map[string]tasker.StepHandler{
		"test.first": echoStep("first"), "test.second": echoStep("second"),
	}, mustParse(t, twoSteps))
	ctx := context.Background()
	counts := map[tasker.TaskState]int{}
	for k := range 300 {
		id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "test", Name: "two_steps"})
		if err != nil {
			t.Fatal(err)
		}
		for range k % 60 { // cancel at a different moment of the task's life each time
			runtime.Gosched()
		}
		if err := eng.Cancel(ctx, id, tasker.Action{}); err != nil && !errors.Is(err, tasker.ErrIllegalTransition) {
			t.Fatalf("Cancel: %v", err)
		}
		task, err := eng.Wait(ctx, id)
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		counts[task.State]++
		if task.State != tasker.TaskCancelled && task.State != tasker.TaskComplete {
			t.Fatalf("task %s", stateOf(task, nil))
		}
	}
	t.Logf("outcomes: %v", counts)
}
