package taskertest_test

import (
	"context"
	"fmt"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/taskertest"
)

// A handler's unit test: the guide's ProcessPayment with a fabricated
// validate_cart result, on its template's step, at its last attempt.
func ExampleCall() {
	tmpl, err := orders.Template()
	if err != nil {
		panic(err)
	}
	out, err := taskertest.Call(context.Background(), tasker.HandlerFunc(orders.Handlers{}.ProcessPayment), tasker.FakeStep{
		Spec:    tmpl.Step("process_payment"),
		Attempt: 3,
		Input:   orders.Input{PaymentToken: orders.TokenGatewayError},
		Results: map[string]any{"validate_cart": orders.Cart{Total: 118.77}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(out.State, out.StepError().Code, out.Failure.Retryable)
	// Output: error GATEWAY_ERROR true
}

// A whole template in memory, one step stubbed: its retries take no time.
func ExampleWorkflow_Run() {
	tmpl, err := orders.Template()
	if err != nil {
		panic(err)
	}
	h := orders.Handlers{}
	flaky := &tasker.StepError{Message: "gateway down", Type: tasker.ErrorRetryable, Retryable: true}
	w := taskertest.Workflow{
		Template: tmpl,
		Handlers: map[string]tasker.StepHandler{
			orders.ValidateCartCallable:     tasker.HandlerFunc(orders.ValidateCart),
			orders.UpdateInventoryCallable:  tasker.HandlerFunc(h.UpdateInventory),
			orders.CreateOrderCallable:      tasker.HandlerFunc(orders.CreateOrder),
			orders.SendConfirmationCallable: tasker.HandlerFunc(orders.SendConfirmation),
		},
		Stubs: map[string]tasker.StepHandler{
			"process_payment": taskertest.FailFirst(1, flaky, orders.Payment{PaymentID: "pay_stub"}),
		},
	}
	rep, err := w.Run(context.Background(), orders.Input{CustomerEmail: "c@example.com",
		CartItems: []orders.CartItem{{SKU: "A", Name: "A", Quantity: 1, UnitPrice: 5}}})
	if err != nil {
		panic(err)
	}
	fmt.Println(rep.State())
	for _, a := range rep.Ran() {
		fmt.Println(a)
	}
	// Output:
	// complete
	// validate_cart#1:complete
	// process_payment#1:waiting_for_retry
	// update_inventory#1:complete
	// process_payment#2:complete
	// create_order#1:complete
	// send_confirmation#1:complete
}
