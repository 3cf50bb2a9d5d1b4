package tasker_test

import (
	"context"
	"fmt"
	"testing/fstest"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/memory"
)

const chargeYAML = `
name: charge
namespace_name: demo
version: "1.0.0"
steps:
  - name: charge
    handler: {callable: demo.Charge}
    retry: {retryable: false}
  - name: receipt
    handler: {callable: demo.Receipt}
    dependencies: [charge]
`

// newChargeEngine starts an engine whose charge step is declined until
// approved is set, and whose receipt step reports the charge's result.
func newChargeEngine(approved *bool) *tasker.Engine {
	eng, _ := tasker.New(memory.New(), nil)
	eng.Register("demo.Charge", tasker.HandlerFunc(func(ctx context.Context, step *tasker.StepContext) (any, error) {
		if !*approved {
			return nil, &tasker.StepError{Message: "card declined", Type: tasker.ErrorPermanent, Code: "DECLINED"}
		}
		return map[string]string{"charge_id": "ch_1"}, nil
	}))
	eng.Register("demo.Receipt", tasker.HandlerFunc(func(ctx context.Context, step *tasker.StepContext) (any, error) {
		var charge struct {
			ChargeID string `json:"charge_id"`
		}
		if err := step.DependencyResult("charge", &charge); err != nil {
			return nil, err
		}
		return "receipt for " + charge.ChargeID, nil
	}))
	tmpl, _ := tasker.ParseTemplate("charge.yaml", []byte(chargeYAML))
	eng.AddTemplates(tmpl)
	eng.Start(context.Background())
	return eng
}

// Retry runs a task that ended in error again, once the cause is fixed:
// the failed step starts over, completed steps keep their results.
func ExampleEngine_Retry() {
	ctx := context.Background()
	approved := false
	eng := newChargeEngine(&approved)
	defer eng.Stop(ctx)

	id, _ := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "demo", Name: "charge"})
	task, _ := eng.Wait(ctx, id)
	fmt.Println(task.State, task.Step("charge").LastError.Code)

	approved = true // the customer fixed their card
	if err := eng.Retry(ctx, id, tasker.Action{By: "ops:alice", Reason: "card updated"}); err != nil {
		fmt.Println(err)
		return
	}
	task, _ = eng.Wait(ctx, id)
	fmt.Println(task.State, string(task.Step("receipt").Result))
	// Output:
	// error DECLINED
	// complete "receipt for ch_1"
}

// Resolve completes a failed step by hand, with the result its dependents
// read, and the task goes on.
func ExampleEngine_Resolve() {
	ctx := context.Background()
	approved := false
	eng := newChargeEngine(&approved)
	defer eng.Stop(ctx)

	id, _ := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "demo", Name: "charge"})
	eng.Wait(ctx, id)
	err := eng.Resolve(ctx, id, "charge", map[string]string{"charge_id": "ch_phone"},
		tasker.Action{By: "ops:bob", Reason: "charged by phone"})
	if err != nil {
		fmt.Println(err)
		return
	}
	task, _ := eng.Wait(ctx, id)
	fmt.Println(task.State, task.Step("charge").State, string(task.Step("receipt").Result))
	// Output: complete resolved_manually "receipt for ch_phone"
}

// LoadTemplates reads every template of an fs.FS, such as an embed.FS
// compiled into the program.
func ExampleLoadTemplates() {
	fsys := fstest.MapFS{"templates/charge.yaml": {Data: []byte(chargeYAML)}}
	tmpls, err := tasker.LoadTemplates(fsys)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range tmpls {
		fmt.Println(t, len(t.Steps), "steps from", t.Source)
	}
	// Output: demo/charge@1.0.0 2 steps from templates/charge.yaml
}

// A template error names the file, line and field.
func ExampleParseTemplate_error() {
	_, err := tasker.ParseTemplate("charge.yaml", []byte(`
name: charge
namespace_name: demo
version: "1.0.0"
steps:
  - name: charge
    handler: {callable: demo.Charge}
    dependancies: [receipt]
`))
	fmt.Println(err)
	// Output: charge.yaml:8: steps[0].dependancies: unknown field "dependancies" (did you mean "dependencies"?)
}
