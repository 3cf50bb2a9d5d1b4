package tasker_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
)

// initEcho returns each step's initialization as its result.
var initEcho = tasker.HandlerFunc(func(_ context.Context, sc *tasker.StepContext) (any, error) {
	return sc.RawInitialization(), nil
})

// TestEnvironmentApplied: the engine's Environment picks a template's
// overrides, merged key by key; without one, the template runs as written.
func TestEnvironmentApplied(t *testing.T) {
	tmpl, err := tasker.LoadTemplateFile("testdata/templates/valid/environments.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env          string
		render, send map[string]any
	}{
		{"", map[string]any{"template": "order_confirmation", "locale": "en"},
			map[string]any{"endpoint": "https://mail.example.com", "batch": 10.0}},
		{"test", map[string]any{"template": "order_confirmation", "locale": "test", "endpoint": "http://all.invalid"},
			map[string]any{"endpoint": "http://localhost:8025", "batch": 10.0, "locale": "test"}},
		{"staging", map[string]any{"template": "order_confirmation", "locale": "en"}, // not defined: none applies
			map[string]any{"endpoint": "https://mail.example.com", "batch": 10.0}},
	} {
		t.Run("env="+tc.env, func(t *testing.T) {
			eng, err := tasker.New(newMemory(t), &tasker.Config{Environment: tc.env})
			if err != nil {
				t.Fatal(err)
			}
			registerAll(t, eng, map[string]tasker.StepHandler{"shop.Render": initEcho, "shop.Send": initEcho})
			if err := eng.AddTemplates(tmpl); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := eng.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer eng.Stop(ctx)
			task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "shop", Name: "notify"})
			for name, want := range map[string]map[string]any{"render": tc.render, "send": tc.send} {
				var got map[string]any
				if err := json.Unmarshal(step(t, task, name).Result, &got); err != nil {
					t.Fatal(err)
				}
				if !equalJSON(got, want) {
					t.Errorf("%s saw initialization %v, want %v", name, got, want)
				}
			}
			wantAttempts := 5 // retry is replaced whole by an override
			if tc.env == "test" {
				wantAttempts = 1
			}
			if s := step(t, task, "send"); s.MaxAttempts != wantAttempts {
				t.Errorf("send's max attempts = %d, want %d", s.MaxAttempts, wantAttempts)
			}
		})
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

const resultSchemaYAML = `
name: checked
namespace_name: test
version: "1.0.0"
steps:
  - name: quote
    handler: {callable: test.quote}
    result_schema:
      type: object
      required: [amount, currency]
      properties:
        amount: {type: number, minimum: 0}
        currency: {type: string}
`

// TestResultSchemaEnforced: a result that breaks result_schema fails the
// attempt for good, RESULT_SCHEMA, listing every violation.
func TestResultSchemaEnforced(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		calls := 0
		eng := startEngine(t, st, map[string]tasker.StepHandler{
			"test.quote": tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) {
				calls++
				return map[string]any{"amount": -3}, nil
			}),
		}, mustParse(t, resultSchemaYAML))
		task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "checked"})
		s := step(t, task, "quote")
		if task.State != tasker.TaskFailed || s.State != tasker.StepFailed || calls != 1 {
			t.Fatalf("task %s, step %s after %d calls; want error after 1", task.State, s.State, calls)
		}
		f := s.LastError
		if f == nil || f.Code != tasker.CodeResultSchema || f.Retryable || f.Type != tasker.ErrorHandler {
			t.Fatalf("failure = %+v, want non-retryable handler_error RESULT_SCHEMA", f)
		}
		for _, want := range []string{"$.amount: Must be greater than or equal to 0", "$.currency: currency is required"} {
			if !strings.Contains(f.Message, want) {
				t.Errorf("message %q does not name %q", f.Message, want)
			}
		}
		if s.Result != nil {
			t.Errorf("result %s stored for a failed attempt", s.Result)
		}
	})
}

const methodsYAML = `
name: refund
namespace_name: payments
version: "1.0.0"
steps:
  - name: check
    handler: {callable: payments.Refund, method: validate}
  - name: pay
    handler: {callable: payments.Refund}
    dependencies: [check]
`

// TestMethodDispatch: one callable serves several methods; each step runs
// the handler of its handler.method, and Start refuses a method no handler
// serves.
func TestMethodDispatch(t *testing.T) {
	method := func(name string) tasker.HandlerFunc {
		return func(_ context.Context, sc *tasker.StepContext) (any, error) {
			return name + ":" + sc.Method(), nil
		}
	}
	eng := startEngine(t, newMemory(t), map[string]tasker.StepHandler{
		"payments.Refund": tasker.Methods{"call": method("refund"), "validate": method("validate")},
	}, mustParse(t, methodsYAML))
	task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "payments", Name: "refund"})
	if got := string(step(t, task, "check").Result); got != `"validate:validate"` {
		t.Errorf("check ran %s, want the validate method", got)
	}
	if got := string(step(t, task, "pay").Result); got != `"refund:call"` {
		t.Errorf("pay ran %s, want the call method", got)
	}

	lacking, err := tasker.New(newMemory(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	registerAll(t, lacking, map[string]tasker.StepHandler{"payments.Refund": tasker.Methods{"call": method("refund")}})
	if err := lacking.AddTemplates(mustParse(t, methodsYAML)); err != nil {
		t.Fatal(err)
	}
	err = lacking.Start(context.Background())
	if !errors.Is(err, tasker.ErrHandlerNotRegistered) || !strings.Contains(err.Error(), `no method "validate"`) {
		t.Errorf("Start = %v, want ErrHandlerNotRegistered naming method validate", err)
	}
}

// TestIdentityStrategies: without an idempotency key, strict dedupes equal
// input (whatever its key order), caller_provided refuses the task, and
// always_unique makes a new task; a key given always dedupes.
func TestIdentityStrategies(t *testing.T) {
	tmpl := func(strategy string) *tasker.Template {
		return mustParse(t, strings.Replace(twoSteps, "steps:\n", "identity_strategy: "+strategy+"\nsteps:\n", 1))
	}
	submit := func(eng *tasker.Engine, input, key string) (string, error) {
		return eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "test", Name: "two_steps",
			Context: json.RawMessage(input), IdempotencyKey: key})
	}
	strict := startEngine(t, newMemory(t), twoStepHandlers(), tmpl("strict"))
	a, _ := submit(strict, `{"order": 1, "sku": "x"}`, "")
	b, _ := submit(strict, `{"sku":"x","order":1}`, "")
	c, _ := submit(strict, `{"order": 2, "sku": "x"}`, "")
	if a == "" || a != b || a == c {
		t.Errorf("strict: IDs %q, %q, %q; want the first two equal, the third new", a, b, c)
	}
	caller := startEngine(t, newMemory(t), twoStepHandlers(), tmpl("caller_provided"))
	if _, err := submit(caller, `{}`, ""); !errors.Is(err, tasker.ErrInvalidInput) {
		t.Errorf("caller_provided without a key = %v, want ErrInvalidInput", err)
	}
	k1, _ := submit(caller, `{}`, "k")
	k2, _ := submit(caller, `{"other": true}`, "k")
	if k1 == "" || k1 != k2 {
		t.Errorf("caller_provided with one key: %q, %q; want one task", k1, k2)
	}
	unique := startEngine(t, newMemory(t), twoStepHandlers(), tmpl("always_unique"))
	u1, _ := submit(unique, `{}`, "")
	u2, _ := submit(unique, `{}`, "")
	if u1 == "" || u1 == u2 {
		t.Errorf("always_unique: %q, %q; want two tasks", u1, u2)
	}
}

// TestStepSeesTaskMetadata: a handler reads its task's identity and the
// submission's metadata from its StepContext.
func TestStepSeesTaskMetadata(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		var got tasker.TaskInfo
		eng := startEngine(t, st, map[string]tasker.StepHandler{
			"test.first":  tasker.HandlerFunc(func(_ context.Context, sc *tasker.StepContext) (any, error) { got = sc.Task(); return nil, nil }),
			"test.second": echoStep("second"),
		}, mustParse(t, twoSteps))
		task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "two_steps",
			Initiator: "api:checkout", SourceSystem: "web", Reason: "New order", Tags: []string{"vip", "eu"}})
		want := tasker.TaskInfo{ID: task.ID, Namespace: "test", Name: "two_steps", Version: "1.0.0",
			Initiator: "api:checkout", SourceSystem: "web", Reason: "New order", Tags: []string{"vip", "eu"},
			Submitted: task.CreatedAt}
		if !got.Submitted.Equal(want.Submitted) {
			t.Errorf("Task().Submitted = %v, want the task's CreatedAt %v", got.Submitted, want.Submitted)
		}
		got.Submitted = want.Submitted
		if !equalJSON(got, want) {
			t.Errorf("Task() = %+v, want %+v", got, want)
		}
	})
}
