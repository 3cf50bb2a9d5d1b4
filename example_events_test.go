package tasker_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/memory"
)

const fetchYAML = `
name: fetch
namespace_name: demo
version: "1.0.0"
steps:
  - name: download
    handler: {callable: demo.Download}
    retry: {max_attempts: 3, backoff: constant, backoff_base_ms: 1}
  - name: save
    handler: {callable: demo.Save}
    dependencies: [download]
`

// Subscribe follows a task's life as it happens: each event comes once the
// change it reports is durable. Here the download fails once and is
// retried.
func ExampleEngine_Subscribe() {
	ctx := context.Background()
	eng, _ := tasker.New(memory.New(), nil)
	eng.Register("demo.Download", tasker.HandlerFunc(func(ctx context.Context, step *tasker.StepContext) (any, error) {
		if step.Attempt() == 1 {
			return nil, errors.New("connection reset")
		}
		return "data", nil
	}))
	eng.Register("demo.Save", tasker.HandlerFunc(func(ctx context.Context, step *tasker.StepContext) (any, error) {
		return "saved", nil
	}))
	tmpl, _ := tasker.ParseTemplate("fetch.yaml", []byte(fetchYAML))
	eng.AddTemplates(tmpl)
	eng.Start(ctx)
	defer eng.Stop(ctx)

	sub := eng.Subscribe(64)
	defer sub.Close()
	eng.Submit(ctx, tasker.SubmitRequest{Namespace: "demo", Name: "fetch"})
	for ev := range sub.C() {
		switch {
		case ev.Step == "":
			fmt.Println(ev.Kind)
		case ev.Error != nil:
			fmt.Println(ev.Kind, ev.Step, ev.Attempt, ev.Error.Message)
		default:
			fmt.Println(ev.Kind, ev.Step, ev.Attempt)
		}
		if ev.Kind == tasker.EventTaskCompleted {
			break
		}
	}
	// Output:
	// task_submitted
	// task_started
	// step_started download 1
	// step_retrying download 1 connection reset
	// step_started download 2
	// step_completed download 2
	// step_started save 1
	// step_completed save 1
	// task_completed
}
