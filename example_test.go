package tasker_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/memory"
)

const greetYAML = `
name: greet
namespace_name: demo
version: "1.0.0"
steps:
  - name: hello
    handler:
      callable: demo.Hello
      initialization: {greeting: Hello}
  - name: shout
    handler:
      callable: demo.Shout
    dependencies: [hello]
input_schema:
  type: object
  required: [who]
  properties:
    who: {type: string}
`

// A two-step workflow: hello reads the task input and its initialization,
// shout reads hello's result.
func Example() {
	ctx := context.Background()
	eng, _ := tasker.New(memory.New(), nil)

	eng.Register("demo.Hello", tasker.HandlerFunc(func(ctx context.Context, step *tasker.StepContext) (any, error) {
		var who string
		var init struct{ Greeting string }
		if err := step.Input("who", &who); err != nil {
			return nil, err
		}
		if err := step.Initialization(&init); err != nil {
			return nil, err
		}
		return map[string]string{"text": init.Greeting + ", " + who}, nil
	}))
	eng.Register("demo.Shout", tasker.HandlerFunc(func(ctx context.Context, step *tasker.StepContext) (any, error) {
		var hello struct{ Text string }
		if err := step.DependencyResult("hello", &hello); err != nil {
			return nil, err
		}
		return hello.Text + "!", nil
	}))

	tmpl, err := tasker.ParseTemplate("greet.yaml", []byte(greetYAML))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := eng.AddTemplates(tmpl); err != nil {
		fmt.Println(err)
		return
	}
	if err := eng.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer eng.Stop(ctx)

	id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "demo", Name: "greet", Context: map[string]string{"who": "gopher"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	task, err := eng.Wait(ctx, id)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(task.State, string(task.Step("shout").Result))
	// Output: complete "Hello, gopher!"
}

// A handler fails on purpose by returning a *tasker.StepError; a
// non-retryable failure ends the task in error at once.
func ExampleStepError() {
	ctx := context.Background()
	eng, _ := tasker.New(memory.New(), nil)
	eng.Register("demo.Hello", tasker.HandlerFunc(func(ctx context.Context, step *tasker.StepContext) (any, error) {
		return nil, &tasker.StepError{Message: "nobody to greet", Type: tasker.ErrorValidation, Code: "NO_ONE"}
	}))
	eng.Register("demo.Shout", tasker.HandlerFunc(func(ctx context.Context, step *tasker.StepContext) (any, error) {
		return nil, nil
	}))
	tmpl, _ := tasker.ParseTemplate("greet.yaml", []byte(greetYAML))
	eng.AddTemplates(tmpl)
	eng.Start(ctx)
	defer eng.Stop(ctx)

	id, _ := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "demo", Name: "greet", Context: map[string]string{"who": ""}})
	task, _ := eng.Wait(ctx, id)
	hello := task.Step("hello")
	fmt.Println(task.State, hello.State, hello.Attempts, hello.LastError.Type, hello.LastError.Code)
	fmt.Println(task.Step("shout").State)
	// Output:
	// error error 1 validation_error NO_ONE
	// pending
}

// Submit validates the input against the template's input_schema and lists
// every violation; nothing is stored.
func ExampleEngine_Submit_invalidInput() {
	ctx := context.Background()
	eng, _ := tasker.New(memory.New(), nil)
	tmpl, _ := tasker.ParseTemplate("greet.yaml", []byte(greetYAML))
	eng.AddTemplates(tmpl)

	_, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "demo", Name: "greet", Context: map[string]int{"who": 7}})
	var ie *tasker.InputError
	if errors.As(err, &ie) {
		for _, v := range ie.Violations {
			fmt.Println(v.Path)
		}
	}
	// Output: $.who
}

// The README's Quickstart: quickstart below is its code.
func Example_quickstart() {
	if err := quickstart(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output: complete 1 {"items":2,"total":109.97}
}

const cartTemplate = `
name: check_cart
namespace_name: ecommerce
version: "1.0.0"
steps:
  - name: validate_cart
    handler: {callable: handlers.ecommerce.ValidateCartHandler}
input_schema:
  type: object
  required: [cart_items]
  properties:
    cart_items: {type: array}
`

// CartItem is an item of the task input's cart_items.
type CartItem struct {
	SKU       string  `json:"sku"`
	Quantity  int     `json:"quantity"`
	UnitPrice float64 `json:"unit_price"`
}

// quickstart runs one task of cartTemplate on a new engine and prints it.
func quickstart(ctx context.Context) (err error) {
	eng, err := tasker.New(memory.New(), nil) // or sqlite.Open("tasks.db", nil)
	if err != nil {
		return err
	}
	err = eng.Register("handlers.ecommerce.ValidateCartHandler", // one Register per callable
		tasker.HandlerFunc(func(ctx context.Context, step *tasker.StepContext) (any, error) {
			var items []CartItem
			if err := step.Input("cart_items", &items); err != nil || len(items) == 0 {
				return nil, &tasker.StepError{Message: "Cart is empty", Type: tasker.ErrorValidation,
					Code: "EMPTY_CART"} // not Retryable: bad data won't get better
			}
			total := 0.0
			for _, it := range items {
				total += float64(it.Quantity) * it.UnitPrice
			}
			return map[string]any{"items": len(items), "total": total}, nil // stored as JSON
		}))
	if err != nil {
		return err
	}

	tmpl, err := tasker.ParseTemplate("check_cart.yaml", []byte(cartTemplate)) // or LoadTemplateDir, LoadTemplates(embedFS)
	if err != nil {
		return err // every problem, with file, line and field
	}
	if err := eng.AddTemplates(tmpl); err != nil {
		return err
	}
	if err := eng.Start(ctx); err != nil {
		return err // fails if a callable has no handler
	}
	defer func() { err = errors.Join(err, eng.Stop(ctx)) }()

	id, err := eng.Submit(ctx, tasker.SubmitRequest{
		Namespace: "ecommerce", Name: "check_cart", // Version "" = highest loaded
		Initiator: "api:checkout", SourceSystem: "web", Reason: "New order received",
		Context: map[string][]CartItem{"cart_items": { // validated against input_schema before anything is stored
			{SKU: "WIDGET-A", Quantity: 2, UnitPrice: 29.99},
			{SKU: "GADGET-B", Quantity: 1, UnitPrice: 49.99},
		}},
	})
	if err != nil {
		return err
	}
	task, err := eng.Wait(ctx, id) // task.State, task.Steps[i].Result, .Attempts, .LastError, .Transitions
	if err != nil {
		return err
	}
	cart := task.Step("validate_cart")
	fmt.Println(task.State, cart.Attempts, string(cart.Result))
	return nil
}
