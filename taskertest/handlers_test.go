package taskertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/taskertest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guideSpec returns the guide template's step name.
func guideSpec(t *testing.T, name string) *tasker.StepSpec {
	t.Helper()
	tmpl, err := orders.Template()
	if err != nil {
		t.Fatal(err)
	}
	return tmpl.Step(name)
}

var items = []orders.CartItem{
	{SKU: "WIDGET-A", Name: "Widget A", Quantity: 2, UnitPrice: 29.99},
	{SKU: "GADGET-B", Name: "Gadget B", Quantity: 1, UnitPrice: 49.99},
}

// call calls h on f and fails the test if f cannot be encoded.
func call(t *testing.T, h tasker.HandlerFunc, f tasker.FakeStep) *taskertest.Outcome {
	t.Helper()
	out, err := taskertest.Call(context.Background(), h, f)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantFailure checks that out is a recorded failure with that state, type
// and code, returned as a *tasker.StepError.
func wantFailure(t *testing.T, out *taskertest.Outcome, state tasker.StepState, typ tasker.ErrorType, code string) {
	t.Helper()
	if out.State != state || out.Failure == nil || out.Failure.Type != typ || out.Failure.Code != code {
		t.Fatalf("outcome %s %+v, want %s %s [%s]", out.State, out.Failure, state, typ, code)
	}
	if out.StepError() == nil || out.Result != nil {
		t.Errorf("err %v, result %s: want a StepError and no result", out.Err, out.Result)
	}
}

func TestValidateCart(t *testing.T) {
	spec := guideSpec(t, "validate_cart")
	out := call(t, orders.ValidateCart, tasker.FakeStep{Spec: spec,
		Input: orders.Input{CartItems: items, CustomerEmail: "c@example.com"}})
	var cart orders.Cart
	if err := out.Decode(&cart); err != nil {
		t.Fatal(err)
	}
	// 2×29.99 + 49.99 = 109.97; tax 8.80; over 100: free shipping.
	if out.State != tasker.StepComplete || cart.ItemCount != 2 || cart.Subtotal != 109.97 || cart.Tax != 8.8 ||
		cart.Shipping != 0 || cart.Total != 118.77 {
		t.Errorf("%s %+v", out.State, cart)
	}

	empty := call(t, orders.ValidateCart, tasker.FakeStep{Spec: spec, Input: map[string]any{"cart_items": []any{}}})
	wantFailure(t, empty, tasker.StepFailed, tasker.ErrorValidation, "EMPTY_CART")

	bad := call(t, orders.ValidateCart, tasker.FakeStep{Spec: spec,
		Input: orders.Input{CartItems: []orders.CartItem{{SKU: "X", Quantity: 0, UnitPrice: 1}}}})
	wantFailure(t, bad, tasker.StepFailed, tasker.ErrorValidation, "INVALID_ITEM")
}

func TestProcessPayment(t *testing.T) {
	spec := guideSpec(t, "process_payment") // 3 attempts
	pay := orders.Handlers{}.ProcessPayment
	cart := orders.Cart{Total: 118.77}
	step := func(token string, attempt int) tasker.FakeStep {
		return tasker.FakeStep{Spec: spec, Attempt: attempt, Input: orders.Input{PaymentToken: token},
			Results: map[string]any{"validate_cart": cart}}
	}

	out := call(t, pay, step(orders.TokenSuccess, 1))
	var p orders.Payment
	if err := out.Decode(&p); err != nil || p.AmountCharged != 118.77 || p.Status != "completed" {
		t.Errorf("%+v, %v", p, err)
	}

	wantFailure(t, call(t, pay, step(orders.TokenDeclined, 1)), tasker.StepFailed, tasker.ErrorPermanent, "PAYMENT_DECLINED")
	// A gateway error is retried while the template's policy allows.
	wantFailure(t, call(t, pay, step(orders.TokenGatewayError, 2)), tasker.StepWaitingForRetry, tasker.ErrorRetryable, "GATEWAY_ERROR")
	last := call(t, pay, step(orders.TokenGatewayError, 3))
	wantFailure(t, last, tasker.StepFailed, tasker.ErrorRetryable, "GATEWAY_ERROR")
	if !last.Failure.Retryable || last.Failure.Attempt != 3 {
		t.Errorf("last attempt's failure %+v, want retryable, attempt 3", last.Failure)
	}

	missing := call(t, pay, tasker.FakeStep{Spec: spec})
	wantFailure(t, missing, tasker.StepFailed, tasker.ErrorHandler, "")
	if !errors.Is(missing.Err, tasker.ErrNoResult) {
		t.Errorf("error %v, want one wrapping ErrNoResult", missing.Err)
	}
}

func TestUpdateInventory(t *testing.T) {
	cart := orders.Cart{ValidatedItems: []orders.ValidatedItem{{CartItem: items[0]}, {CartItem: items[1]}}}
	out := call(t, orders.Handlers{}.UpdateInventory, tasker.FakeStep{Spec: guideSpec(t, "update_inventory"),
		Results: map[string]any{"validate_cart": cart}})
	var inv orders.Inventory
	if err := out.Decode(&inv); err != nil {
		t.Fatal(err)
	}
	if inv.TotalItemsReserved != 3 || len(inv.Reservations) != 2 || inv.Reservations[0].ReservationID != "res_widget-a" {
		t.Errorf("%+v", inv)
	}
}

func TestCreateOrder(t *testing.T) {
	spec := guideSpec(t, "create_order")
	results := map[string]any{
		"validate_cart":    orders.Cart{Total: 118.77},
		"process_payment":  orders.Payment{PaymentID: "pay_1", TransactionID: "txn_1"},
		"update_inventory": orders.Inventory{InventoryLogID: "log_1"},
	}
	out := call(t, orders.CreateOrder, tasker.FakeStep{Spec: spec, Results: results,
		Input: orders.Input{CustomerEmail: "c@example.com"}})
	var o orders.Order
	if err := out.Decode(&o); err != nil {
		t.Fatal(err)
	}
	if o.Total != 118.77 || o.PaymentID != "pay_1" || o.InventoryLogID != "log_1" || o.CustomerEmail != "c@example.com" {
		t.Errorf("%+v", o)
	}

	delete(results, "update_inventory")
	partial := call(t, orders.CreateOrder, tasker.FakeStep{Spec: spec, Results: results})
	wantFailure(t, partial, tasker.StepFailed, tasker.ErrorHandler, "")
	if !errors.Is(partial.Err, tasker.ErrNoResult) {
		t.Errorf("error %v, want one wrapping ErrNoResult", partial.Err)
	}
}

func TestSendConfirmation(t *testing.T) {
	out := call(t, orders.SendConfirmation, tasker.FakeStep{Spec: guideSpec(t, "send_confirmation"),
		Results: map[string]any{"create_order": orders.Order{OrderID: "ORD-1", CustomerEmail: "c@example.com"}}})
	var c orders.Confirmation
	if err := out.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if !c.EmailSent || c.Recipient != "c@example.com" || c.Subject != "Order Confirmation - ORD-1" {
		t.Errorf("%+v", c)
	}
}

func decode(raw json.RawMessage, v any) error { return json.Unmarshal(raw, v) }
