package tasker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gotasker/tasker/store"
)

// StepHandler runs one step of a task. Register it under the callable name a
// template's handler.callable gives, with Engine.Register.
//
// Call returns the step's result, which must be JSON-serializable (a
// json.RawMessage is stored as is) and is stored as JSON, or an error:
//
//   - a *StepError (or an error wrapping one) is recorded as it says: its
//     type, code and message, retried only if Retryable and the step's policy
//     allows, after RetryAfter if it gives one;
//   - any other error is a retryable ErrorHandler failure with the error's
//     text as its message, so transient faults are retried by default;
//   - a result json.Marshal rejects is a non-retryable ErrorHandler failure
//     with code RESULT_NOT_JSON;
//   - a panic, in Call or in encoding its return (a MarshalJSON or an
//     Error method that panics), is recovered and recorded as a
//     non-retryable ErrorHandler failure with code PANIC and the stack; the
//     engine goes on;
//   - a typed nil error (a nil *StepError, say, returned as error) is a
//     non-retryable ErrorHandler failure with code NIL_ERROR;
//   - a runtime.Goexit is a non-retryable ErrorHandler failure with code
//     GOEXIT and the stack; the engine replaces the worker it took;
//   - when the step's timeout expires, the attempt is a retryable
//     ErrorTimeout failure, whatever the handler returned.
//
// Call must honour ctx: it is cancelled at the step's timeout, and when the
// engine stops (context.Cause(ctx) is then ErrEngineStopping).
// Implementations are called concurrently, for many tasks at once.
type StepHandler interface {
	Call(ctx context.Context, step *StepContext) (result any, err error)
}

// HandlerFunc adapts a function to StepHandler.
type HandlerFunc func(ctx context.Context, step *StepContext) (any, error)

// Call calls f(ctx, step).
func (f HandlerFunc) Call(ctx context.Context, step *StepContext) (any, error) { return f(ctx, step) }

// StepContext is what a handler sees of its step: the task input, the
// results of completed upstream steps, the step's initialization and where
// the attempt stands. It is valid only during the Call it is passed to, and
// safe for concurrent use by the goroutines that Call starts.
type StepContext struct {
	run     *run
	spec    *StepSpec
	attempt int

	ancMu sync.Mutex
	anc   []bool // the step's ancestors, found on the first transitive read

	sched   *scheduler // writes its checkpoints, starts its sub-tasks; nil outside a running attempt
	started time.Time  // when the attempt was claimed

	onSave func(json.RawMessage) error // a fake's (NewStepContext) checkpoint saver; nil in the engine

	evMu     sync.Mutex
	payloads map[string]json.RawMessage // SetEventPayload's, by event; nil when none
}

// bound reports whether c is the context of a step. A zero StepContext is
// not: its methods return zero values and errors instead of panicking.
func (c *StepContext) bound() bool { return c != nil && c.run != nil && c.spec != nil }

// Checkpoint decodes the step's last saved checkpoint into v and reports
// whether there was one: a retried attempt, or one resumed after a crash or
// a Retry, starts from it, so that work already done is not done again.
func (c *StepContext) Checkpoint(v any) (bool, error) {
	if !c.bound() {
		return false, nil
	}
	raw := c.run.checkpoint(c.spec.index)
	if raw == nil {
		return false, nil
	}
	return true, decode(raw, v, "checkpoint")
}

// SaveCheckpoint saves v, JSON-encoded, as the step's checkpoint — such as
// the cursor reached, the items processed, the results so far — durably,
// before it returns, and in the step's audit trail. A later attempt of the
// step reads it with Checkpoint. It fails when v cannot be encoded, when
// the store refuses the write, or when this attempt is no longer the
// step's running one.
func (c *StepContext) SaveCheckpoint(v any) error {
	if !c.bound() {
		return errors.New("tasker: save checkpoint: not in a running attempt")
	}
	raw, err := toJSON("checkpoint", v)
	if err != nil {
		return fmt.Errorf("tasker: save checkpoint of %s: %w", c.spec.Name, err)
	}
	if c.onSave != nil {
		return c.saveFake(raw)
	}
	if c.sched == nil {
		return fmt.Errorf("tasker: save checkpoint of %s: not in a running attempt", c.spec.Name)
	}
	return c.sched.saveCheckpoint(c.run, c.spec.index, c.attempt, raw)
}

// TaskInfo is what a handler sees of its task: its identity and the
// submission's metadata.
type TaskInfo struct {
	ID, Namespace, Name, Version string
	Initiator, SourceSystem      string
	Reason                       string
	Tags                         []string
	Submitted                    time.Time // when the task was submitted
	// Trace is the trace context stored with the task at its submission
	// (Config.CaptureContext); nil when none.
	Trace map[string]string
}

// Task returns the step's task's identity and metadata (initiator, source
// system, reason, tags), as submitted.
func (c *StepContext) Task() TaskInfo {
	if !c.bound() || c.run.info == nil {
		return TaskInfo{}
	}
	t := c.run.info
	return TaskInfo{ID: t.ID, Namespace: t.Namespace, Name: t.Name, Version: t.Version, Initiator: t.Initiator,
		SourceSystem: t.SourceSystem, Reason: t.Reason, Tags: slices.Clone(t.Tags), Submitted: t.CreatedAt,
		Trace: maps.Clone(t.Trace)}
}

// TaskID returns the ID of the step's task ("" for a zero StepContext).
func (c *StepContext) TaskID() string {
	if !c.bound() {
		return ""
	}
	return c.run.id
}

// StepName returns the step's name in its template ("" for a zero
// StepContext).
func (c *StepContext) StepName() string {
	if !c.bound() {
		return ""
	}
	return c.spec.Name
}

// Attempt returns this attempt's number, counted from 1 (0 for a zero
// StepContext).
func (c *StepContext) Attempt() int {
	if !c.bound() {
		return 0
	}
	return c.attempt
}

// MaxAttempts returns how many attempts the step's retry policy allows (0
// for a zero StepContext).
func (c *StepContext) MaxAttempts() int {
	if !c.bound() {
		return 0
	}
	return c.spec.Retry.Attempts()
}

// Method returns the step's handler.method ("call" unless the template
// names another), for a handler that serves several; see Methods. It is
// "" for a zero StepContext.
func (c *StepContext) Method() string {
	if !c.bound() {
		return ""
	}
	return c.spec.Method
}

// IdempotencyKey returns a key that is the same for every attempt of this
// step of this task, "<task id>/<step name>", for handlers to pass to
// external systems so that a repeated attempt is not applied twice. It is
// "" for a zero StepContext.
func (c *StepContext) IdempotencyKey() string {
	if !c.bound() {
		return ""
	}
	return c.run.id + "/" + c.spec.Name
}

// RawInput returns the task input's value under key as JSON, or nil when the
// input has no such key.
func (c *StepContext) RawInput(key string) json.RawMessage {
	if !c.bound() {
		return nil
	}
	return c.run.inputField(key)
}

// Input decodes the task input's value under key into v. It returns an error
// wrapping ErrNoInput when the key is absent.
func (c *StepContext) Input(key string, v any) error {
	raw := c.RawInput(key)
	if raw == nil {
		return fmt.Errorf("%w: %q", ErrNoInput, key)
	}
	return decode(raw, v, "input "+key)
}

// DecodeInput decodes the whole task input into v, typically a struct. A
// zero StepContext has no input: the error wraps ErrNoInput.
func (c *StepContext) DecodeInput(v any) error {
	if !c.bound() {
		return fmt.Errorf("%w: not a step's context", ErrNoInput)
	}
	return decode(c.run.input, v, "input")
}

// RawDependencyResult returns the stored result of step as JSON, or nil when
// step is not upstream of this one (directly or transitively) or has not
// completed.
func (c *StepContext) RawDependencyResult(step string) json.RawMessage {
	if !c.bound() {
		return nil
	}
	c.ancMu.Lock()
	defer c.ancMu.Unlock()
	return c.run.upstreamResult(c.spec.index, step, &c.anc)
}

// DependencyResult decodes the result of an upstream step into v, like
// Tasker's get_dependency_result: any step this one depends on, directly or
// transitively, may be read. It returns an error wrapping ErrNoResult when
// step is not upstream or has no result.
func (c *StepContext) DependencyResult(step string, v any) error {
	raw := c.RawDependencyResult(step)
	if raw == nil {
		return fmt.Errorf("%w: %q is not a completed upstream step of %q", ErrNoResult, step, c.StepName())
	}
	return decode(raw, v, "result of "+step)
}

// BatchCursor returns the batch a batch worker processes, as its
// batchable step's result gave it, and true; false for any other step.
func (c *StepContext) BatchCursor() (BatchCursor, bool) {
	var bc BatchCursor
	if !c.bound() || c.spec.cursor == nil || json.Unmarshal(c.spec.cursor, &bc) != nil {
		return BatchCursor{}, false
	}
	return bc, true
}

// BatchResult is what one batch worker came to, for the step after the
// batch: its name, state, result (when it completed) and failure.
type BatchResult struct {
	Step   string
	Cursor BatchCursor
	State  StepState
	Result json.RawMessage // nil unless the worker completed
	Error  *Failure        // the worker's last failure; nil when none
}

// BatchResults returns what every batch worker of the worker template
// named worker came to, in batch order, like Tasker's
// get_all_dependency_results: the convergence step after a batch reads
// them all, and with continue_on_failure sees which failed. It is empty
// when the batch created no workers, and nil when worker is not a worker
// template this step depends on directly.
func (c *StepContext) BatchResults(worker string) []BatchResult {
	if !c.bound() {
		return nil
	}
	return c.run.batchResults(c.spec.index, worker)
}

// RawInitialization returns the step's handler.initialization as JSON ("{}"
// when the template gives none; nil for a zero StepContext).
func (c *StepContext) RawInitialization() json.RawMessage {
	if !c.bound() {
		return nil
	}
	return c.spec.Initialization
}

// Initialization decodes the step's handler.initialization into v. A zero
// StepContext has none: that is an error.
func (c *StepContext) Initialization(v any) error {
	if !c.bound() {
		return errors.New("tasker: decode initialization: not a step's context")
	}
	return decode(c.spec.Initialization, v, "initialization")
}

func decode(raw json.RawMessage, v any, what string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("tasker: decode %s: %w", what, err)
	}
	return nil
}

// registry maps callable names to handlers. Safe for concurrent use.
type registry struct {
	mu       sync.RWMutex
	handlers map[string]StepHandler
}

func (reg *registry) register(callable string, h StepHandler) error {
	if callable == "" {
		return fmt.Errorf("%w: Register needs a callable name", ErrInvalidHandler)
	}
	if h == nil || holdsNil(h) {
		return fmt.Errorf("%w: callable %q: the handler is a nil %T", ErrInvalidHandler, callable, h)
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if _, dup := reg.handlers[callable]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicateHandler, callable)
	}
	if reg.handlers == nil {
		reg.handlers = make(map[string]StepHandler)
	}
	reg.handlers[callable] = h
	return nil
}

func (reg *registry) lookup(callable string) StepHandler {
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	return reg.handlers[callable]
}

// checkTemplate returns an error naming every step of t whose callable has no
// handler, or whose handler is a Methods without the step's method.
func (reg *registry) checkTemplate(t *Template) error {
	var errs []error
	for _, s := range t.Steps {
		h := reg.lookup(s.Callable)
		if h == nil {
			errs = append(errs, fmt.Errorf("%w: template %s, step %s: callable %q",
				ErrHandlerNotRegistered, t, s.Name, s.Callable))
		}
		if m, ok := h.(Methods); ok && m[s.Method] == nil {
			errs = append(errs, fmt.Errorf("%w: template %s, step %s: callable %q has no method %q (it has %s)",
				ErrHandlerNotRegistered, t, s.Name, s.Callable, s.Method, m.names()))
		}
	}
	return errors.Join(errs...)
}

// Methods is a handler that serves several of a callable's methods, as a
// Tasker handler class does: it calls the handler registered under the
// step's handler.method (StepContext.Method), "call" when the template
// names none. Start refuses a template whose step names a method the
// Methods lacks (ErrHandlerNotRegistered).
//
//	eng.Register("payments.RefundHandler", tasker.Methods{
//		"call":     tasker.HandlerFunc(refund),
//		"validate": tasker.HandlerFunc(validateRefund),
//	})
type Methods map[string]StepHandler

// Call calls the handler of step.Method(). A method it lacks is a
// non-retryable failure with code UNKNOWN_METHOD.
func (m Methods) Call(ctx context.Context, step *StepContext) (any, error) {
	h := m[step.Method()]
	if h == nil {
		return nil, &StepError{Message: fmt.Sprintf("no handler for method %q (have %s)", step.Method(), m.names()),
			Type: ErrorHandler, Code: CodeUnknownMethod}
	}
	return h.Call(ctx, step)
}

// names lists m's methods, sorted, for messages.
func (m Methods) names() string {
	return strings.Join(slices.Sorted(maps.Keys(m)), ", ")
}

// outcome is what one attempt of a handler came to.
type outcome struct {
	result      json.RawMessage // the JSON result, when the attempt succeeded
	fail        *store.Failure  // the failure, when it did not
	retryAfter  time.Duration   // a handler's StepError.RetryAfter
	interrupted bool            // the engine stopped under it: record nothing
	cancelled   bool            // its task was cancelled under it
	parked      bool            // it waits for its sub-task: record nothing yet
	// payloads are the handler's event payloads (SetEventPayload); nil
	// when none. outbox says whether the store keeps durable events.
	payloads map[string]json.RawMessage
	outbox   bool
}

// invoke runs one attempt of a handler: it applies the step's timeout (none
// when zero) and turns what the handler returned into an outcome.
//
// Everything from the handler call to the outcome, the result's encoding
// and the error's classification included, is one contained region: a
// panic anywhere in it, a typed-nil error or a runtime.Goexit becomes a
// non-retryable ErrorHandler failure. Goexit cannot be stopped: invoke then
// never returns, so it passes the outcome to onGoexit, from a deferred call
// on the exiting goroutine, for the caller to record and to replace that
// goroutine.
func invoke(ctx context.Context, h StepHandler, sc *StepContext, timeout time.Duration, onGoexit func(outcome)) (out outcome) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, ErrStepTimeout)
		defer cancel()
	}
	returned, called := false, false
	defer func() {
		if returned {
			return
		}
		out = contained(recover(), called, sc)
		if out.fail.Code == CodeGoexit {
			onGoexit(out)
		}
	}()
	v, err := h.Call(ctx, sc)
	called = true
	out = outcomeOf(ctx, v, err, timeout)
	if out.fail == nil && out.result != nil && sc.spec != nil && sc.spec.resultSchema != nil {
		out.fail = checkResult(sc.spec, out.result)
	}
	if out.fail != nil {
		out.fail.Attempt = sc.attempt
	}
	returned = true
	return out
}

// outcomeOf classifies what a handler returned, given the cause of its
// context's end, if it ended.
func outcomeOf(ctx context.Context, v any, err error, timeout time.Duration) (out outcome) {
	cause := context.Cause(ctx)
	switch {
	case err != nil && holdsNil(err):
		out.fail = &store.Failure{Message: fmt.Sprintf("handler returned a nil %T as its error", err),
			Type: string(ErrorHandler), Code: CodeNilError}
	case err != nil && errors.Is(err, ErrSubtaskPending) && cause == nil:
		out.parked = true
	case err != nil && errors.Is(cause, ErrEngineStopping):
		out.interrupted = true
	case err != nil && errors.Is(cause, ErrTaskCancelled):
		out.cancelled = true
	case errors.Is(cause, ErrStepTimeout):
		out.fail = &store.Failure{Message: fmt.Sprintf("step timed out after %s", timeout),
			Type: string(ErrorTimeout), Code: CodeTimeout, Retryable: true}
	case err != nil && errors.Is(cause, ErrTaskDeadline):
		out.fail = &store.Failure{Message: "task deadline exceeded", Type: string(ErrorTimeout), Code: CodeTaskDeadline}
	case err != nil && errors.Is(cause, ErrTaskStale):
		out.fail = &store.Failure{Message: "the task went stale", Type: string(ErrorTimeout), Code: CodeStale}
	case err != nil:
		out.fail, out.retryAfter = failureOf(err)
	default:
		if out.result, err = toJSON("result", v); err != nil {
			out.fail = &store.Failure{Message: err.Error(), Type: string(ErrorHandler), Code: CodeResultNotJSON}
		}
	}
	return out
}

// checkResult returns the failure of a result that breaks its step's
// result_schema, listing every violation, or nil.
func checkResult(spec *StepSpec, result json.RawMessage) *store.Failure {
	vs := spec.validateResult(result)
	if len(vs) == 0 {
		return nil
	}
	msg := make([]string, len(vs))
	for i, v := range vs {
		msg[i] = v.Path + ": " + v.Message
	}
	return &store.Failure{Message: "result breaks the step's result_schema: " + strings.Join(msg, "; "),
		Type: string(ErrorHandler), Code: CodeResultSchema}
}

// contained is the outcome of an attempt that did not return: p is what
// recover returned (nil for a runtime.Goexit) and called tells whether the
// handler had returned, so the panic came from classifying its return.
func contained(p any, called bool, sc *StepContext) outcome {
	f := &store.Failure{Type: string(ErrorHandler), Attempt: sc.attempt, Stack: string(debug.Stack())}
	switch {
	case p == nil:
		f.Code, f.Message = CodeGoexit, "handler called runtime.Goexit"
	case called:
		f.Code, f.Message = CodePanic, fmt.Sprintf("encoding the handler's result or error panicked: %v", p)
	default:
		f.Code, f.Message = CodePanic, fmt.Sprintf("handler panicked: %v", p)
	}
	return outcome{fail: f}
}

// holdsNil reports whether v, a non-nil interface, holds a nil pointer or
// func: a typed nil.
func holdsNil(v any) bool {
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Func:
		return rv.IsNil()
	}
	return false
}

// failureOf maps a handler's error to the failure that is stored, and the
// delay it asks for before the next attempt.
func failureOf(err error) (*store.Failure, time.Duration) {
	var se *StepError
	if !errors.As(err, &se) {
		return &store.Failure{Message: err.Error(), Type: string(ErrorHandler), Retryable: true}, 0
	}
	t := se.Type
	if t == "" {
		t = ErrorHandler
	}
	return &store.Failure{Message: se.Message, Type: string(t), Code: se.Code, Retryable: se.Retryable}, se.RetryAfter
}

// toJSON encodes v, what the caller names in errors ("result", "task
// input"); a json.RawMessage is checked and kept as it is.
func toJSON(what string, v any) (json.RawMessage, error) {
	if raw, ok := v.(json.RawMessage); ok && raw != nil {
		if !json.Valid(raw) {
			return nil, fmt.Errorf("%s is not valid JSON", what)
		}
		return raw, nil
	}
	b, err := marshalJSON(v)
	if err != nil {
		return nil, fmt.Errorf("%s is not JSON-serializable: %w", what, err)
	}
	return b, nil
}

// objectOnly returns an error unless raw, valid JSON, is an object.
func objectOnly(raw json.RawMessage) error {
	var kind string
	switch b := bytes.TrimLeft(raw, " \t\r\n"); b[0] {
	case '{':
		return nil
	case '[':
		kind = "an array"
	case '"':
		kind = "a string"
	case 'n':
		kind = "null"
	case 't', 'f':
		kind = "a boolean"
	default:
		kind = "a number"
	}
	return fmt.Errorf("task input must be a JSON object, not %s", kind)
}
