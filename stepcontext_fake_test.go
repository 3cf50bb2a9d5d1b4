package tasker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
)

// A zero StepContext — what a handler's test builds without tasker — does
// not panic: its methods return zero values and errors.
func TestZeroStepContext(t *testing.T) {
	for name, c := range map[string]*tasker.StepContext{"zero": {}, "nil": nil} {
		var v any
		if c.TaskID() != "" || c.StepName() != "" || c.Attempt() != 0 || c.MaxAttempts() != 0 || c.Method() != "" ||
			c.IdempotencyKey() != "" || c.RawInput("k") != nil || c.RawDependencyResult("s") != nil ||
			c.RawInitialization() != nil || c.BatchResults("w") != nil {
			t.Errorf("%s: a method returned a non-zero value", name)
		}
		if _, ok := c.BatchCursor(); ok {
			t.Errorf("%s: BatchCursor found one", name)
		}
		if ok, err := c.Checkpoint(&v); ok || err != nil {
			t.Errorf("%s: Checkpoint = %v, %v", name, ok, err)
		}
		if !errors.Is(c.Input("k", &v), tasker.ErrNoInput) || !errors.Is(c.DecodeInput(&v), tasker.ErrNoInput) ||
			!errors.Is(c.DependencyResult("s", &v), tasker.ErrNoResult) {
			t.Errorf("%s: Input, DecodeInput or DependencyResult without its sentinel", name)
		}
		if c.Initialization(&v) == nil || c.SaveCheckpoint(1) == nil {
			t.Errorf("%s: Initialization or SaveCheckpoint did not fail", name)
		}
		if _, err := c.Subtask(context.Background(), tasker.SubmitRequest{}); err == nil {
			t.Errorf("%s: Subtask did not fail", name)
		}
	}
}

// Every method of a fabricated StepContext reads what FakeStep gives.
func TestNewStepContext(t *testing.T) {
	tmpl, err := orders.Template()
	if err != nil {
		t.Fatal(err)
	}
	c, err := tasker.NewStepContext(tasker.FakeStep{
		Spec: tmpl.Step("create_order"), TaskID: "t-1", Attempt: 2, MaxAttempts: 5, Method: "refund",
		Input:          json.RawMessage(`{"customer_email":"c@example.com"}`),
		Results:        map[string]any{"process_payment": orders.Payment{PaymentID: "pay_1"}},
		Initialization: map[string]int{"limit": 3},
		BatchCursor:    &tasker.BatchCursor{BatchID: "001", EndCursor: 10, BatchSize: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(c.TaskID(), " ", c.StepName(), " ", c.Attempt(), "/", c.MaxAttempts(), " ", c.Method(), " ",
		c.IdempotencyKey(), " ", string(c.RawInput("customer_email")), " ", string(c.RawInitialization()))
	if want := `t-1 create_order 2/5 refund t-1/create_order "c@example.com" {"limit":3}`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var in orders.Input
	var pay orders.Payment
	var init struct{ Limit int }
	if err := errors.Join(c.DecodeInput(&in), c.DependencyResult("process_payment", &pay), c.Initialization(&init)); err != nil ||
		in.CustomerEmail != "c@example.com" || pay.PaymentID != "pay_1" || init.Limit != 3 {
		t.Errorf("%+v %+v %+v %v", in, pay, init, err)
	}
	if err := c.DependencyResult("validate_cart", &pay); !errors.Is(err, tasker.ErrNoResult) {
		t.Errorf("a result FakeStep does not give: %v", err)
	}
	if bc, ok := c.BatchCursor(); !ok || bc.BatchID != "001" || bc.EndCursor != 10 {
		t.Errorf("BatchCursor = %+v, %v", bc, ok)
	}
	if _, err := c.Subtask(context.Background(), tasker.SubmitRequest{}); err == nil {
		t.Error("Subtask on a fake did not fail")
	}
	if ok, _ := c.Checkpoint(&init); ok {
		t.Error("a checkpoint FakeStep did not give")
	}
	if err := c.SaveCheckpoint(map[string]int{"limit": 7}); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Checkpoint(&init); !ok || err != nil || init.Limit != 7 {
		t.Errorf("Checkpoint after SaveCheckpoint = %v, %v, %+v", ok, err, init)
	}
}

// A handler's unit test: a fabricated context, the outcome as recorded.
func ExampleCallHandler() {
	step, err := tasker.NewStepContext(tasker.FakeStep{Name: "greet", Input: map[string]string{"name": "Ada"}})
	if err != nil {
		panic(err)
	}
	greet := tasker.HandlerFunc(func(_ context.Context, step *tasker.StepContext) (any, error) {
		var name string
		if err := step.Input("name", &name); err != nil {
			return nil, &tasker.StepError{Message: err.Error(), Type: tasker.ErrorValidation}
		}
		return "hello " + name, nil
	})
	out := tasker.CallHandler(context.Background(), greet, step)
	fmt.Println(out.State, string(out.Result))
	// Output: complete "hello Ada"
}
