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
