package tasker_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/gotasker/tasker"
)

// Each test here runs its engine in a child process (see inChild): a
// handler that gets past the engine's containment kills the process or
// hangs it, and the parent then fails the test with the child's output.

// okStep is a one-step template whose handler, test.ok, always succeeds.
const okStep = `
name: ok_step
namespace_name: test
version: "1.0.0"
steps:
  - name: only
    handler:
      callable: test.ok
`

// checkContained runs, on an engine with workers workers, a oneStep task
// whose handler is bad and then an okStep task. The bad step must end in
// error after one attempt, though its policy allows three: a non-retryable
// handler_error with code, and a stack holding stackHas ("" for none). The
// task must end in error, and the second task complete. It prints
// "contained: <code> <second task's state>".
func checkContained(t *testing.T, workers int, bad tasker.HandlerFunc, code, stackHas string) {
	t.Helper()
	ok := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) { return "ok", nil })
	eng := startEngineWith(t, newMemory(t), &tasker.Config{Workers: workers},
		map[string]tasker.StepHandler{"test.handler": bad, "test.ok": ok}, mustParse(t, oneStep), mustParse(t, okStep))

	task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "one_step"})
	s := step(t, task, "only")
	if task.State != tasker.TaskFailed || s.State != tasker.StepFailed || s.Attempts != 1 {
		t.Fatalf("task %s; want error after 1 attempt", stateOf(task, nil))
	}
	e := s.LastError
	if e == nil || e.Type != tasker.ErrorHandler || e.Code != code || e.Retryable || e.Attempt != 1 || e.Message == "" {
		t.Fatalf("failure = %+v; want a non-retryable %s %s of attempt 1", e, tasker.ErrorHandler, code)
	}
	if stackHas == "" && e.Stack != "" || !strings.Contains(e.Stack, stackHas) {
		t.Fatalf("failure stack = %q; want one holding %q", e.Stack, stackHas)
	}

	next := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "ok_step"})
	if next.State != tasker.TaskComplete || string(step(t, next, "only").Result) != `"ok"` {
		t.Fatalf("the next task: %s; want complete", stateOf(next, nil))
	}
	fmt.Printf("contained: %s %s\n", e.Code, next.State)
}

func TestHandlerTypedNilErrorIsContained(t *testing.T) {
	if !inChild(t, "contained: NIL_ERROR complete") {
		return
	}
	checkContained(t, 1, func(context.Context, *tasker.StepContext) (any, error) {
		var e *tasker.StepError
		return nil, e
	}, tasker.CodeNilError, "")
}

// explodingError is an error whose Error method panics.
type explodingError struct{}

func (explodingError) Error() string { panic("Error exploded") }

func TestHandlerErrorWhoseErrorPanicsIsContained(t *testing.T) {
	if !inChild(t, "contained: PANIC complete") {
		return
	}
	checkContained(t, 1, func(context.Context, *tasker.StepContext) (any, error) {
		return nil, explodingError{}
	}, tasker.CodePanic, "explodingError.Error")
}

// explodingJSON is a result whose MarshalJSON panics.
type explodingJSON struct{}

func (explodingJSON) MarshalJSON() ([]byte, error) { panic("MarshalJSON exploded") }

func TestHandlerResultWhoseMarshalJSONPanicsIsContained(t *testing.T) {
	if !inChild(t, "contained: PANIC complete") {
		return
	}
	checkContained(t, 1, func(context.Context, *tasker.StepContext) (any, error) {
		return explodingJSON{}, nil
	}, tasker.CodePanic, "explodingJSON.MarshalJSON")
}

// With one worker, the second task completes only if the worker the
// Goexit took was replaced.
func TestHandlerGoexitIsContained(t *testing.T) {
	if !inChild(t, "contained: GOEXIT complete") {
		return
	}
	checkContained(t, 1, func(context.Context, *tasker.StepContext) (any, error) {
		runtime.Goexit()
		return "unreachable", nil
	}, tasker.CodeGoexit, "TestHandlerGoexitIsContained")
}
