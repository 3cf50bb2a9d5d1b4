// Package taskertest tests tasker handlers and templates without a real
// engine set-up.
//
// Call runs one handler on a fabricated step context — task input, upstream
// results, initialization, attempt, checkpoint — with no engine and no
// store, and reports what it returned and what the engine would record of
// it (the result as stored, or the failure, and the step's next state), as
// the engine's own classification decides:
//
//	out, err := taskertest.Call(ctx, tasker.HandlerFunc(orders.ValidateCart), tasker.FakeStep{
//		Input: orders.Input{CartItems: items, CustomerEmail: "a@example.com"},
//	})
//
// Workflow runs a whole template in memory, some steps' handlers replaced by
// stubs, one step at a time and with instant retries, and reports which
// steps ran, in which order, with which attempts.
//
// # What takes real time
//
// Retry backoff does not: Workflow sets tasker.Config.RetryDelay so that
// every retry is queued at once, whatever the template's backoff (the
// step's stored next_attempt_at still shows the computed time). Step
// timeouts (timeout_seconds, Config.StepTimeout) and task deadlines
// (SubmitRequest.Timeout) do: they are real timers on the handler's
// context. A test of a timeout gives the step a short timeout_seconds, or
// a stub that returns the failure it wants to see.
package taskertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/gotasker/tasker"
)

// Outcome is what one call of a handler came to: what it returned, and
// what the engine would record of it (the embedded tasker.HandlerOutcome:
// State, Result, Failure, RetryAfter, Pending).
type Outcome struct {
	tasker.HandlerOutcome
	// Value is the result the handler returned, as it returned it.
	Value any
	// Err is the error the handler returned; nil when it returned none
	// (or did not return: a panic or a runtime.Goexit, which Failure
	// records).
	Err error
	// Checkpoints lists every checkpoint the handler saved, JSON-encoded,
	// in order.
	Checkpoints []json.RawMessage
}

// StepError returns the *tasker.StepError the handler's error is or wraps,
// or nil.
func (o *Outcome) StepError() *tasker.StepError {
	var se *tasker.StepError
	if errors.As(o.Err, &se) {
		return se
	}
	return nil
}

// Decode decodes the stored result into v. It is an error when the attempt
// did not succeed.
func (o *Outcome) Decode(v any) error {
	if o.Result == nil {
		return fmt.Errorf("taskertest: no result: the step is %s: %v", o.State, o.Failure)
	}
	return json.Unmarshal(o.Result, v)
}

// Call calls h once on the step context f describes (see
// tasker.NewStepContext), as an engine's worker would, and returns its
// outcome. The checkpoints the handler saves are collected in
// Outcome.Checkpoints, after f.OnCheckpoint, when set, accepts them. The
// error is NewStepContext's: f cannot be encoded; whatever the handler does
// is in the Outcome.
func Call(ctx context.Context, h tasker.StepHandler, f tasker.FakeStep) (*Outcome, error) {
	o := &Outcome{}
	var mu sync.Mutex // the handler's goroutines may save concurrently
	accept := f.OnCheckpoint
	f.OnCheckpoint = func(raw json.RawMessage) error {
		if accept != nil {
			if err := accept(raw); err != nil {
				return err
			}
		}
		mu.Lock()
		defer mu.Unlock()
		o.Checkpoints = append(o.Checkpoints, raw)
		return nil
	}
	sc, err := tasker.NewStepContext(f)
	if err != nil {
		return nil, err
	}
	spy := tasker.HandlerFunc(func(ctx context.Context, step *tasker.StepContext) (any, error) {
		v, err := h.Call(ctx, step)
		o.Value, o.Err = v, err
		return v, err
	})
	o.HandlerOutcome = tasker.CallHandler(ctx, spy, sc)
	return o, nil
}
