package tasker_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gotasker/tasker"
)

// Programmer errors are errors, never panics, and leave nothing behind.

// nilHandler is a StepHandler whose nil pointer Register rejects.
type nilHandler struct{}

func (*nilHandler) Call(context.Context, *tasker.StepContext) (any, error) { return nil, nil }

func TestRegisterRejectsEmptyCallableAndNilHandlers(t *testing.T) {
	valid := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) { return "ok", nil })
	for _, c := range []struct {
		name     string
		callable string
		h        tasker.StepHandler
	}{
		{"empty callable", "", valid},
		{"nil handler", "test.ok", nil},
		{"nil HandlerFunc", "test.ok", tasker.HandlerFunc(nil)},
		{"nil pointer handler", "test.ok", (*nilHandler)(nil)},
	} {
		t.Run(c.name, func(t *testing.T) {
			eng, err := tasker.New(newMemory(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.Register(c.callable, c.h); !errors.Is(err, tasker.ErrInvalidHandler) {
				t.Fatalf("Register = %v, want ErrInvalidHandler", err)
			}
			// Nothing was registered: the callable is free, and a template
			// naming it needs a handler to start.
			if err := eng.AddTemplates(mustParse(t, okStep)); err != nil {
				t.Fatal(err)
			}
			if err := eng.Start(context.Background()); !errors.Is(err, tasker.ErrHandlerNotRegistered) {
				t.Fatalf("Start = %v, want ErrHandlerNotRegistered", err)
			}
			if err := eng.Register("test.ok", valid); err != nil {
				t.Fatalf("Register after the rejected one = %v", err)
			}
		})
	}
}

func TestAddTemplatesRejectsNilTemplate(t *testing.T) {
	for _, c := range []struct {
		name string
		ts   func(t *testing.T) []*tasker.Template
	}{
		{"alone", func(*testing.T) []*tasker.Template { return []*tasker.Template{nil} }},
		{"after a valid one", func(t *testing.T) []*tasker.Template { return []*tasker.Template{mustParse(t, okStep), nil} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			ok := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) { return "ok", nil })
			eng := startEngine(t, newMemory(t), map[string]tasker.StepHandler{"test.ok": ok})
			if err := eng.AddTemplates(c.ts(t)...); !errors.Is(err, tasker.ErrInvalidTemplate) {
				t.Fatalf("AddTemplates = %v, want ErrInvalidTemplate", err)
			}
			// All or none: the valid template was not added either.
			_, err := eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "test", Name: "ok_step"})
			if !errors.Is(err, tasker.ErrTemplateNotFound) {
				t.Fatalf("Submit = %v, want ErrTemplateNotFound", err)
			}
			assertNoTasks(t, eng)
		})
	}
}

func TestSubmitRejectsNonObjectInputWithoutSchema(t *testing.T) {
	for _, c := range []struct {
		name  string
		input any
		kind  string
	}{
		{"number", 42, "a number"},
		{"string", "str", "a string"},
		{"array", []int{1}, "an array"},
		{"raw array", json.RawMessage(" [1]"), "an array"},
		{"null literal", json.RawMessage("null"), "null"},
		{"boolean", true, "a boolean"},
	} {
		t.Run(c.name, func(t *testing.T) {
			eng := startOneStep(t)
			_, err := eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "test", Name: "one_step", Context: c.input})
			ie := assertInputError(t, err)
			if len(ie.Violations) != 1 || ie.Violations[0].Path != "$" || !strings.HasSuffix(ie.Violations[0].Message, "not "+c.kind) {
				t.Errorf("violations = %+v, want one at $ saying it is %s", ie.Violations, c.kind)
			}
			assertNoTasks(t, eng)
		})
	}
	t.Run("object", func(t *testing.T) { // the control: an object goes through
		eng := startOneStep(t)
		task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "one_step", Context: json.RawMessage(" {\"a\": 1}")})
		if task.State != tasker.TaskComplete || string(task.Context) != ` {"a": 1}` {
			t.Fatalf("task %s with input %s, want complete with the input", stateOf(task, nil), task.Context)
		}
	})
}

func TestSubmitInputEncodingErrorNamesTemplate(t *testing.T) {
	eng := startOneStep(t)
	_, err := eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "test", Name: "one_step",
		Context: map[string]any{"callback": func() {}}})
	ie := assertInputError(t, err)
	if !strings.Contains(err.Error(), "test/one_step@1.0.0") || !strings.Contains(err.Error(), "not JSON-serializable") {
		t.Errorf("error = %q, want it to name the template and the encoding problem", err)
	}
	if len(ie.Violations) != 1 || ie.Violations[0].Path != "$" {
		t.Errorf("violations = %+v, want one at $", ie.Violations)
	}
	assertNoTasks(t, eng)
}

// startOneStep starts an engine with the oneStep template, its handler
// succeeding.
func startOneStep(t *testing.T) *tasker.Engine {
	t.Helper()
	h := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) { return nil, nil })
	return startEngine(t, newMemory(t), map[string]tasker.StepHandler{"test.handler": h}, mustParse(t, oneStep))
}

// assertInputError fails t unless err is an *InputError of the oneStep
// template, wrapping ErrInvalidInput, and returns it.
func assertInputError(t *testing.T, err error) *tasker.InputError {
	t.Helper()
	var ie *tasker.InputError
	if !errors.Is(err, tasker.ErrInvalidInput) || !errors.As(err, &ie) {
		t.Fatalf("Submit error = %v, want an *InputError", err)
	}
	if ie.Template != "test/one_step@1.0.0" {
		t.Errorf("InputError.Template = %q, want test/one_step@1.0.0", ie.Template)
	}
	return ie
}

// assertNoTasks fails t if eng's store holds any task.
func assertNoTasks(t *testing.T, eng *tasker.Engine) {
	t.Helper()
	tasks, err := eng.List(context.Background(), tasker.TaskFilter{})
	if err != nil || len(tasks) != 0 {
		t.Errorf("List = %d tasks, %v; want nothing stored", len(tasks), err)
	}
}
