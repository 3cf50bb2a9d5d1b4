package taskertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/taskertest"
)

// Call classifies what a handler returns exactly as the engine records it.
func TestCallClassifiesAsTheEngine(t *testing.T) {
	var nilErr *tasker.StepError
	cases := []struct {
		name    string
		attempt int
		h       tasker.HandlerFunc
		state   tasker.StepState
		typ     tasker.ErrorType
		code    string
		retry   bool
	}{
		{"plain error, attempts left", 1, func(context.Context, *tasker.StepContext) (any, error) { return nil, errors.New("boom") },
			tasker.StepWaitingForRetry, tasker.ErrorHandler, "", true},
		{"plain error, last attempt", 3, func(context.Context, *tasker.StepContext) (any, error) { return nil, errors.New("boom") },
			tasker.StepFailed, tasker.ErrorHandler, "", true},
		{"panic", 1, func(context.Context, *tasker.StepContext) (any, error) { panic("oops") },
			tasker.StepFailed, tasker.ErrorHandler, tasker.CodePanic, false},
		{"goexit", 1, func(context.Context, *tasker.StepContext) (any, error) { runtime.Goexit(); return nil, nil },
			tasker.StepFailed, tasker.ErrorHandler, tasker.CodeGoexit, false},
		{"typed nil", 1, func(context.Context, *tasker.StepContext) (any, error) { return nil, nilErr },
			tasker.StepFailed, tasker.ErrorHandler, tasker.CodeNilError, false},
		{"not JSON", 1, func(context.Context, *tasker.StepContext) (any, error) { return func() {}, nil },
			tasker.StepFailed, tasker.ErrorHandler, tasker.CodeResultNotJSON, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := call(t, c.h, tasker.FakeStep{Attempt: c.attempt})
			f := out.Failure
			if out.State != c.state || f == nil || f.Type != c.typ || f.Code != c.code || f.Retryable != c.retry || f.Attempt != c.attempt {
				t.Errorf("%s %+v, want %s %s [%s] retryable %v", out.State, f, c.state, c.typ, c.code, c.retry)
			}
		})
	}
}

func TestCallRetryAfterAndPending(t *testing.T) {
	out := call(t, func(context.Context, *tasker.StepContext) (any, error) {
		return nil, &tasker.StepError{Message: "slow down", Retryable: true, RetryAfter: time.Minute}
	}, tasker.FakeStep{})
	if out.State != tasker.StepWaitingForRetry || out.RetryAfter != time.Minute {
		t.Errorf("%s, retry after %s", out.State, out.RetryAfter)
	}
	pending := call(t, func(context.Context, *tasker.StepContext) (any, error) {
		return nil, fmt.Errorf("%w: child", tasker.ErrSubtaskPending)
	}, tasker.FakeStep{})
	if !pending.Pending || pending.State != tasker.StepInProgress || pending.Failure != nil {
		t.Errorf("%+v", pending.HandlerOutcome)
	}
}

// The step's timeout cancels the handler's context, and the attempt is a
// retryable timeout whatever the handler returned.
func TestCallTimeout(t *testing.T) {
	spec := &tasker.StepSpec{Name: "slow", Retry: tasker.DefaultRetryPolicy(), Timeout: 10 * time.Millisecond}
	out := call(t, func(ctx context.Context, _ *tasker.StepContext) (any, error) {
		<-ctx.Done()
		return "late", nil
	}, tasker.FakeStep{Spec: spec})
	if out.State != tasker.StepWaitingForRetry || out.Failure == nil || out.Failure.Code != tasker.CodeTimeout {
		t.Errorf("%s %+v", out.State, out.Failure)
	}
}

func TestCallResultSchema(t *testing.T) {
	tmpl, err := tasker.ParseTemplate("t.yaml", []byte(`name: t
namespace_name: test
version: "1.0.0"
steps:
  - name: total
    handler: {callable: total}
    result_schema:
      type: object
      required: [total]
`))
	if err != nil {
		t.Fatal(err)
	}
	out := call(t, func(context.Context, *tasker.StepContext) (any, error) { return map[string]int{"sum": 1}, nil },
		tasker.FakeStep{Spec: tmpl.Step("total")})
	if out.State != tasker.StepFailed || out.Failure == nil || out.Failure.Code != tasker.CodeResultSchema {
		t.Errorf("%s %+v", out.State, out.Failure)
	}
}

// A retried attempt finds its checkpoint; what it saves is collected, and
// read back by the next Checkpoint; a refused save is SaveCheckpoint's
// error.
func TestCallCheckpoints(t *testing.T) {
	resume := func(_ context.Context, step *tasker.StepContext) (any, error) {
		var at int
		if _, err := step.Checkpoint(&at); err != nil {
			return nil, err
		}
		for at < 3 {
			at++
			if err := step.SaveCheckpoint(at); err != nil {
				return nil, err
			}
		}
		var last int
		ok, err := step.Checkpoint(&last)
		return map[string]any{"last": last, "ok": ok}, err
	}
	out := call(t, resume, tasker.FakeStep{Attempt: 2, Checkpoint: 1})
	want := []json.RawMessage{json.RawMessage("2"), json.RawMessage("3")}
	if !slices.EqualFunc(out.Checkpoints, want, func(a, b json.RawMessage) bool { return string(a) == string(b) }) ||
		string(out.Result) != `{"last":3,"ok":true}` {
		t.Errorf("checkpoints %s, result %s", out.Checkpoints, out.Result)
	}

	full := errors.New("disk full")
	refused := call(t, resume, tasker.FakeStep{OnCheckpoint: func(json.RawMessage) error { return full }})
	if !errors.Is(refused.Err, full) || len(refused.Checkpoints) != 0 || refused.State != tasker.StepWaitingForRetry {
		t.Errorf("err %v, checkpoints %s, state %s", refused.Err, refused.Checkpoints, refused.State)
	}
}

func TestCallRefusesWhatCannotBeEncoded(t *testing.T) {
	h := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) { return nil, nil })
	for name, f := range map[string]tasker.FakeStep{
		"input not an object": {Input: []int{1}},
		"result not JSON":     {Results: map[string]any{"up": make(chan int)}},
		"result of itself":    {Name: "me", Results: map[string]any{"me": 1}},
	} {
		if _, err := taskertest.Call(context.Background(), h, f); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
