package tasker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/store"
)

// meetHandler wraps a handler so that it starts only once its partner has
// started too: two steps wrapped with the two ends of a meeting can only
// finish if they run at the same time.
func meetHandler(h tasker.HandlerFunc, arrive chan<- struct{}, partner <-chan struct{}) tasker.HandlerFunc {
	return func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		close(arrive)
		select {
		case <-partner:
		case <-time.After(10 * time.Second):
			return nil, &tasker.StepError{Message: "partner step never started: branches ran serially", Type: tasker.ErrorPermanent}
		}
		return h(ctx, sc)
	}
}

// meetingOrderHandlers returns the guide's handlers with payment and
// inventory made to meet: each waits until the other has started. Good for
// one task only.
func meetingOrderHandlers() map[string]tasker.StepHandler {
	var h orders.Handlers
	payStarted, invStarted := make(chan struct{}), make(chan struct{})
	handlers := orderHandlers(h)
	handlers[orders.ProcessPaymentCallable] = meetHandler(h.ProcessPayment, payStarted, invStarted)
	handlers[orders.UpdateInventoryCallable] = meetHandler(h.UpdateInventory, invStarted, payStarted)
	return handlers
}

func TestEcommerceHappyPath(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := startEngine(t, st, meetingOrderHandlers(), ordersTemplate(t))

		task := submitAndWait(t, eng, orderRequest(guideInput(orders.TokenSuccess)))
		if task.State != tasker.TaskComplete {
			t.Fatalf("task state = %s, want complete; steps: %+v", task.State, task.Steps)
		}
		for _, s := range task.Steps {
			if s.State != tasker.StepComplete || s.Attempts != 1 || s.LastError != nil {
				t.Errorf("step %s: state %s, attempts %d, error %v; want complete after 1 attempt", s.Name, s.State, s.Attempts, s.LastError)
			}
		}

		var cart orders.Cart
		decodeResult(t, task, "validate_cart", &cart)
		if cart.Subtotal != 109.97 || cart.Tax != 8.80 || cart.Shipping != 0 || cart.Total != 118.77 || cart.ItemCount != 2 {
			t.Errorf("cart = %+v; want subtotal 109.97, tax 8.80, shipping 0, total 118.77, 2 items", cart)
		}
		var pay orders.Payment
		decodeResult(t, task, "process_payment", &pay)
		if pay.AmountCharged != 118.77 || pay.Status != "completed" {
			t.Errorf("payment = %+v; want 118.77 charged", pay)
		}
		var order orders.Order
		decodeResult(t, task, "create_order", &order)
		if order.PaymentID != "pay_abc123" || order.InventoryLogID != "log_inv_001" || order.Total != 118.77 || len(order.Items) != 2 {
			t.Errorf("order = %+v", order)
		}
		var conf orders.Confirmation
		decodeResult(t, task, "send_confirmation", &conf)
		if conf.Recipient != "customer@example.com" || conf.Subject != "Order Confirmation - ORD-20260218-ABC" || !conf.EmailSent {
			t.Errorf("confirmation = %+v", conf)
		}

		v, p, i := step(t, task, "validate_cart"), step(t, task, "process_payment"), step(t, task, "update_inventory")
		c, s := step(t, task, "create_order"), step(t, task, "send_confirmation")
		notBefore(t, p, v)
		notBefore(t, i, v)
		notBefore(t, c, p)
		notBefore(t, c, i)
		notBefore(t, s, c)
		if !p.StartedAt.Before(i.FinishedAt) || !i.StartedAt.Before(p.FinishedAt) {
			t.Errorf("payment [%v, %v] and inventory [%v, %v] did not overlap", p.StartedAt, p.FinishedAt, i.StartedAt, i.FinishedAt)
		}
		wantTrail(t, task.Transitions, "", "pending>in_progress", "in_progress>complete")
		wantTrail(t, p.Transitions, "process_payment", "pending>in_progress", "in_progress>complete")
		if task.Initiator != "api:checkout" || task.SourceSystem != "web" || task.Reason != "New order received" {
			t.Errorf("task metadata = %q %q %q", task.Initiator, task.SourceSystem, task.Reason)
		}
	})
}

// notBefore fails unless step later started no earlier than step earlier finished.
func notBefore(t *testing.T, later, earlier *tasker.Step) {
	t.Helper()
	if later.StartedAt.IsZero() || earlier.FinishedAt.IsZero() || later.StartedAt.Before(earlier.FinishedAt) {
		t.Errorf("%s started at %v, before %s finished at %v", later.Name, later.StartedAt, earlier.Name, earlier.FinishedAt)
	}
}

// wantTrail checks a transition list against "from>to" pairs.
func wantTrail(t *testing.T, trail []tasker.Transition, who string, want ...string) {
	t.Helper()
	var got []string
	for _, tr := range trail {
		got = append(got, tr.From+">"+tr.To)
	}
	if len(got) != len(want) {
		t.Errorf("%q transitions = %v, want %v", who, got, want)
		return
	}
	for k := range got {
		if got[k] != want[k] {
			t.Errorf("%q transitions = %v, want %v", who, got, want)
			return
		}
	}
}

func decodeResult(t *testing.T, task *tasker.Task, name string, v any) {
	t.Helper()
	if err := json.Unmarshal(step(t, task, name).Result, v); err != nil {
		t.Fatalf("result of %s: %v (raw %s)", name, err, step(t, task, name).Result)
	}
}

func TestEcommercePaymentDeclined(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		// The payment fails only once inventory is running, so the failure
		// meets a running sibling, which must finish and be recorded.
		eng := startEngine(t, st, meetingOrderHandlers(), ordersTemplate(t))
		task := submitAndWait(t, eng, orderRequest(guideInput(orders.TokenDeclined)))
		if task.State != tasker.TaskFailed {
			t.Fatalf("task state = %s, want error", task.State)
		}
		p := step(t, task, "process_payment")
		if p.State != tasker.StepFailed || p.Attempts != 1 {
			t.Errorf("process_payment: %s after %d attempts, want error after 1", p.State, p.Attempts)
		}
		if e := p.LastError; e == nil || e.Type != tasker.ErrorPermanent || e.Code != "PAYMENT_DECLINED" || e.Retryable || e.Attempt != 1 {
			t.Errorf("process_payment error = %+v", e)
		}
		for _, name := range []string{"create_order", "send_confirmation"} {
			s := step(t, task, name)
			if s.State != tasker.StepPending || s.Attempts != 0 || len(s.Transitions) != 0 {
				t.Errorf("%s: %s, %d attempts, %d transitions; want never started", name, s.State, s.Attempts, len(s.Transitions))
			}
		}
		if inv := step(t, task, "update_inventory"); inv.State != tasker.StepComplete {
			t.Errorf("update_inventory (a running sibling) = %s, want complete and recorded", inv.State)
		}
		wantTrail(t, task.Transitions, "", "pending>in_progress", "in_progress>error")
	})
}

func TestEcommerceGatewayErrorRetries(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := startEngine(t, st, orderHandlers(orders.Handlers{}), ordersTemplate(t))
		task := submitAndWait(t, eng, orderRequest(guideInput(orders.TokenGatewayError)))
		if task.State != tasker.TaskFailed {
			t.Fatalf("task state = %s, want error", task.State)
		}
		p := step(t, task, "process_payment")
		if p.State != tasker.StepFailed || p.Attempts != 3 {
			t.Fatalf("process_payment: %s after %d attempts, want error after exactly 3", p.State, p.Attempts)
		}
		if e := p.LastError; e == nil || e.Type != tasker.ErrorRetryable || e.Code != "GATEWAY_ERROR" || e.Attempt != 3 {
			t.Errorf("last error = %+v", e)
		}
		wantTrail(t, p.Transitions, "process_payment",
			"pending>in_progress", "in_progress>waiting_for_retry",
			"waiting_for_retry>in_progress", "in_progress>waiting_for_retry",
			"waiting_for_retry>in_progress", "in_progress>error")
		// Policy: exponential from 100 ms, so 100 ms after attempt 1 and 200 ms
		// after attempt 2, each shortened by jitter of at most 25 %. A timer
		// never fires early; the upper bound allows for a loaded machine.
		tr := p.Transitions
		for k, base := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
			gap := tr[2+2*k].At.Sub(tr[1+2*k].At)
			if lo, hi := base*3/4, base+2*time.Second; gap < lo || gap > hi {
				t.Errorf("delay after attempt %d = %v, want within [%v, %v]", k+1, gap, lo, hi)
			}
		}
		for _, name := range []string{"create_order", "send_confirmation"} {
			if s := step(t, task, name); s.Attempts != 0 {
				t.Errorf("%s ran %d times, want never", name, s.Attempts)
			}
		}
	})
}

func TestEcommerceEmptyCart(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := startEngine(t, st, orderHandlers(orders.Handlers{}), ordersTemplate(t))
		input := guideInput(orders.TokenSuccess)
		input.CartItems = []orders.CartItem{}
		task := submitAndWait(t, eng, orderRequest(input))
		if task.State != tasker.TaskFailed {
			t.Fatalf("task state = %s, want error", task.State)
		}
		v := step(t, task, "validate_cart")
		if v.State != tasker.StepFailed || v.Attempts != 1 || v.MaxAttempts != 2 {
			t.Errorf("validate_cart: %s after %d of %d attempts, want error after 1 (no retry)", v.State, v.Attempts, v.MaxAttempts)
		}
		if e := v.LastError; e == nil || e.Type != tasker.ErrorValidation || e.Code != "EMPTY_CART" || e.Retryable {
			t.Errorf("validate_cart error = %+v", e)
		}
		wantTrail(t, v.Transitions, "validate_cart", "pending>in_progress", "in_progress>error")
		for _, s := range task.Steps[1:] {
			if s.State != tasker.StepPending || s.Attempts != 0 {
				t.Errorf("%s: %s after %d attempts, want never started", s.Name, s.State, s.Attempts)
			}
		}
	})
}

// TestConvergenceWaitsForLastDependency holds process_payment until the test
// has seen update_inventory complete, and checks that create_order starts
// only after payment completes: the critical path, not the sum.
func TestConvergenceWaitsForLastDependency(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		w := newWatch(st)
		var h orders.Handlers
		release := make(chan struct{})
		handlers := orderHandlers(h)
		handlers[orders.ProcessPaymentCallable] = tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
			<-release
			return h.ProcessPayment(ctx, sc)
		})
		eng := startEngine(t, w, handlers, ordersTemplate(t))
		id, err := eng.Submit(context.Background(), orderRequest(guideInput(orders.TokenSuccess)))
		if err != nil {
			t.Fatal(err)
		}
		w.await(t, "update_inventory", "complete")
		mid, err := eng.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if s := step(t, mid, "create_order"); s.State != tasker.StepPending {
			t.Errorf("create_order is %s while payment runs, want pending", s.State)
		}
		if s := step(t, mid, "process_payment"); s.State != tasker.StepInProgress {
			t.Errorf("process_payment is %s, want in_progress", s.State)
		}
		close(release)
		task, err := eng.Wait(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if task.State != tasker.TaskComplete {
			t.Fatalf("task = %s", task.State)
		}
		notBefore(t, step(t, task, "create_order"), step(t, task, "process_payment"))
	})
}
