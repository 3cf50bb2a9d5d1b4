package taskertest_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/taskertest"
)

// guide returns a Workflow of the guide's template with its five handlers.
func guide(t *testing.T) taskertest.Workflow {
	t.Helper()
	tmpl, err := orders.Template()
	if err != nil {
		t.Fatal(err)
	}
	h := orders.Handlers{}
	return taskertest.Workflow{Template: tmpl, Handlers: map[string]tasker.StepHandler{
		orders.ValidateCartCallable:     tasker.HandlerFunc(orders.ValidateCart),
		orders.ProcessPaymentCallable:   tasker.HandlerFunc(h.ProcessPayment),
		orders.UpdateInventoryCallable:  tasker.HandlerFunc(h.UpdateInventory),
		orders.CreateOrderCallable:      tasker.HandlerFunc(orders.CreateOrder),
		orders.SendConfirmationCallable: tasker.HandlerFunc(orders.SendConfirmation),
	}}
}

func order(token string) orders.Input {
	return orders.Input{CartItems: items, CustomerEmail: "c@example.com", PaymentToken: token}
}

func run(t *testing.T, w taskertest.Workflow, input any) *taskertest.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := w.Run(ctx, input)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func wantRan(t *testing.T, rep *taskertest.Report, state tasker.TaskState, want ...string) {
	t.Helper()
	if got := rep.Ran(); rep.State() != state || !slices.Equal(got, want) {
		t.Errorf("task %s, ran\n\t%q\nwant task %s, ran\n\t%q", rep.State(), got, state, want)
	}
}

func TestWorkflowGuide(t *testing.T) {
	rep := run(t, guide(t), order(orders.TokenSuccess))
	wantRan(t, rep, tasker.TaskComplete, "validate_cart#1:complete", "process_payment#1:complete",
		"update_inventory#1:complete", "create_order#1:complete", "send_confirmation#1:complete")
	var c orders.Confirmation
	if err := decode(rep.Attempts[4].Result, &c); err != nil || c.Subject != "Order Confirmation - ORD-20260218-ABC" {
		t.Errorf("%+v, %v", c, err)
	}
}

// The gateway error is retried to the template's 3 attempts, the other
// branch running between them, and the task fails.
func TestWorkflowGuideRetriesThenFails(t *testing.T) {
	rep := run(t, guide(t), order(orders.TokenGatewayError))
	wantRan(t, rep, tasker.TaskFailed, "validate_cart#1:complete", "process_payment#1:waiting_for_retry",
		"update_inventory#1:complete", "process_payment#2:waiting_for_retry", "process_payment#3:error")
	if f := rep.Attempts[4].Error; f == nil || f.Code != "GATEWAY_ERROR" || f.Attempt != 3 {
		t.Errorf("last failure %+v", f)
	}
	if s := rep.Task.Step("create_order"); s.State != tasker.StepPending || s.Attempts != 0 {
		t.Errorf("create_order %s after %d attempts, want pending, never run", s.State, s.Attempts)
	}
}

// A stub replaces one step's handler; the real handlers downstream read
// its result.
func TestWorkflowStub(t *testing.T) {
	w := guide(t)
	gateway := &tasker.StepError{Message: "down", Type: tasker.ErrorRetryable, Retryable: true}
	w.Stubs = map[string]tasker.StepHandler{
		"process_payment": taskertest.FailFirst(2, gateway, orders.Payment{PaymentID: "pay_stub", Status: "completed"}),
	}
	rep := run(t, w, order(""))
	wantRan(t, rep, tasker.TaskComplete, "validate_cart#1:complete", "process_payment#1:waiting_for_retry",
		"update_inventory#1:complete", "process_payment#2:waiting_for_retry", "process_payment#3:complete",
		"create_order#1:complete", "send_confirmation#1:complete")
	var o orders.Order
	if err := decode(rep.Task.Step("create_order").Result, &o); err != nil || o.PaymentID != "pay_stub" {
		t.Errorf("%+v, %v", o, err)
	}
}

// backoff's retries wait an hour each, and a has a branch racing them.
const backoff = `name: backoff
namespace_name: test
version: "1.0.0"
steps:
  - name: a
    handler: {callable: work}
    retry: {retryable: true, max_attempts: 3, backoff: constant, backoff_base_ms: 3600000}
  - name: b
    handler: {callable: work}
  - name: c
    handler: {callable: work}
    dependencies: [b]
  - name: d
    handler: {callable: work}
    dependencies: [b]
`

// Retries take no real time (the run ends well within its 10 s), and keep
// their place in the queue: the same run gives the same order every time.
// b's worker goes straight on to c, queueing d behind a's retry.
func TestWorkflowInstantDeterministicRetries(t *testing.T) {
	tmpl, err := tasker.ParseTemplate("backoff.yaml", []byte(backoff))
	if err != nil {
		t.Fatal(err)
	}
	w := taskertest.Workflow{Template: tmpl,
		Handlers: map[string]tasker.StepHandler{"work": taskertest.Returns("done")},
		Stubs:    map[string]tasker.StepHandler{"a": taskertest.FailFirst(2, errors.New("flaky"), "done")}}
	for range 20 {
		rep := run(t, w, nil)
		wantRan(t, rep, tasker.TaskComplete, "a#1:waiting_for_retry", "b#1:complete", "c#1:complete",
			"a#2:waiting_for_retry", "d#1:complete", "a#3:complete")
		if t.Failed() {
			return
		}
	}
}

func TestWorkflowSetUpErrors(t *testing.T) {
	w := guide(t)
	delete(w.Handlers, orders.CreateOrderCallable)
	if _, err := w.Run(context.Background(), order("")); !errors.Is(err, tasker.ErrHandlerNotRegistered) {
		t.Errorf("missing handler: %v", err)
	}
	w = guide(t)
	w.Stubs = map[string]tasker.StepHandler{"no_such_step": taskertest.Returns(1)}
	if _, err := w.Run(context.Background(), order("")); err == nil {
		t.Error("a stub of no step: no error")
	}
	if _, err := guide(t).Run(context.Background(), map[string]any{}); !errors.Is(err, tasker.ErrInvalidInput) {
		t.Errorf("input without cart_items: %v", err)
	}
}
