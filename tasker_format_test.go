package tasker_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
)

// TestTaskerEcommerceTemplateRuns runs Tasker's own e-commerce template, as
// Tasker ships it, to completion with trivial handlers.
func TestTaskerEcommerceTemplateRuns(t *testing.T) {
	tpl, err := tasker.LoadTemplateFile("testdata/templates/tasker/ecommerce_order_processing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	handlers := make(map[string]tasker.StepHandler)
	for _, s := range tpl.Steps {
		name := s.Name
		handlers[s.Callable] = tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) {
			if name == "validate_cart" { // its result_schema is enforced
				return map[string]any{"step": name, "validated_items": []string{"p1"}, "total": 59.98}, nil
			}
			return map[string]string{"step": name}, nil
		})
	}
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := startEngine(t, st, handlers, tpl)
		task := submitAndWait(t, eng, tasker.SubmitRequest{
			Namespace: "ecommerce", Name: "order_processing",
			Context: map[string]any{
				"customer_info": map[string]any{"email": "ada@example.com"},
				"cart_items":    []any{map[string]any{"product_id": "p1", "quantity": 2}},
				"payment_info":  map[string]any{"token": "tok_test"},
			},
		})
		if task.State != tasker.TaskComplete {
			t.Fatalf("task %s, want complete", stateOf(task, nil))
		}
		for _, s := range tpl.Steps {
			got := step(t, task, s.Name)
			if got.State != tasker.StepComplete || !strings.HasPrefix(string(got.Result), `{"step":"`+s.Name+`"`) {
				t.Errorf("step %s: %s, result %s", s.Name, got.State, got.Result)
			}
		}
	})
}

// TestAddTemplatesAcceptsEveryStepType: a template using every step type
// of Tasker's model is added: the engine runs them all.
func TestAddTemplatesAcceptsEveryStepType(t *testing.T) {
	tpl, err := tasker.LoadTemplateFile("testdata/templates/valid/step_types.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := tasker.New(memory.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.AddTemplates(tpl); err != nil {
		t.Fatalf("AddTemplates = %v", err)
	}
}

// TestResultsAndInputNotHTMLEscaped checks that "<", ">" and "&" are stored
// as they are, not as \u003c and the like.
func TestResultsAndInputNotHTMLEscaped(t *testing.T) {
	const text = "<b>Tom & Jerry</b>"
	eng := startEngine(t, memory.New(), map[string]tasker.StepHandler{
		"test.handler": tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) {
			return map[string]string{"html": text}, nil
		}),
	}, mustParse(t, oneStep))
	task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "one_step",
		Context: map[string]string{"note": text}})
	if got, want := string(step(t, task, "only").Result), `{"html":"`+text+`"}`; got != want {
		t.Errorf("result %s, want %s", got, want)
	}
	if got, want := string(task.Context), `{"note":"`+text+`"}`; got != want {
		t.Errorf("input %s, want %s", got, want)
	}
}
