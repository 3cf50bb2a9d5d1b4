package tasker

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gotasker/tasker/internal/templatefile"
)

// Sentinel errors, returned wrapped: test them with errors.Is.
var (
	// ErrInvalidTemplate is wrapped by every *TemplateError, and by the
	// error of AddTemplates given a nil *Template.
	ErrInvalidTemplate = errors.New("tasker: invalid template")
	// ErrInvalidInput is wrapped by every *InputError.
	ErrInvalidInput = errors.New("tasker: invalid task input")
	// ErrTemplateNotFound reports a submission naming no loaded template.
	ErrTemplateNotFound = errors.New("tasker: template not found")
	// ErrDuplicateTemplate reports a template added twice with the same
	// namespace, name and version.
	ErrDuplicateTemplate = errors.New("tasker: template already added")
	// ErrHandlerNotRegistered reports a template step whose callable has no
	// registered handler.
	ErrHandlerNotRegistered = errors.New("tasker: handler not registered")
	// ErrInvalidHandler reports a Register call with an empty callable name
	// or a nil handler (a nil interface, or a nil func or pointer in one,
	// such as HandlerFunc(nil)).
	ErrInvalidHandler = errors.New("tasker: invalid handler registration")
	// ErrDuplicateHandler reports a callable registered twice.
	ErrDuplicateHandler = errors.New("tasker: handler already registered")
	// ErrTaskNotFound reports an unknown task ID.
	ErrTaskNotFound = errors.New("tasker: task not found")
	// ErrIllegalTransition reports a state change the transition table
	// refuses.
	ErrIllegalTransition = errors.New("tasker: illegal state transition")
	// ErrEngineStopping is the cancellation cause of a handler's context when
	// the engine stops: the step is left in progress, for recovery.
	ErrEngineStopping = errors.New("tasker: engine stopping")
	// ErrTaskCancelled is the cancellation cause of a handler's context when
	// an operator cancels its task.
	ErrTaskCancelled = errors.New("tasker: task cancelled")
	// ErrTaskDeadline is the cancellation cause of a handler's context when
	// its task's deadline passes.
	ErrTaskDeadline = errors.New("tasker: task deadline exceeded")
	// ErrEngineStopped reports a call that needs a running engine after Stop.
	ErrEngineStopped = errors.New("tasker: engine stopped")
	// ErrNoResult reports that a step has no result a handler may read: it is
	// not an upstream step, or it has not completed.
	ErrNoResult = errors.New("tasker: no result for step")
	// ErrNoInput reports that the task input has no such key.
	ErrNoInput = errors.New("tasker: no such input")
	// ErrStepNotFound reports a step name that the task does not have.
	ErrStepNotFound = errors.New("tasker: step not found")
	// ErrTemplateMismatch reports a stored task whose steps no longer match
	// its loaded template (steps added or removed without a version bump).
	// Such a task is set aside in error, with code CodeTemplateMismatch.
	ErrTemplateMismatch = errors.New("tasker: stored task does not match its template")

	// ErrTaskStale is the cancellation cause of a handler's context when its
	// task went stale by its template's lifecycle and is ended in error.
	ErrTaskStale = errors.New("tasker: task stale")
	// ErrSubtaskPending is returned by StepContext.Subtask while the
	// sub-task runs: the handler returns it, and the step waits for the
	// sub-task without holding a worker.
	ErrSubtaskPending = errors.New("tasker: waiting for the sub-task")
	// ErrSubtaskFailed is returned by StepContext.Subtask for a sub-task
	// that ended in error or was cancelled.
	ErrSubtaskFailed = errors.New("tasker: sub-task failed")
	// ErrSubtaskGone is wrapped by the error StepContext.Subtask returns
	// for a step linked to a sub-task that the store no longer has: the
	// sub-task ended, and retention (Config.Retention) deleted it, with its
	// idempotency key, before the step read its outcome. That outcome is
	// unknown, and submitting again would run the sub-workflow a second
	// time, so Subtask submits nothing: the error is a non-retryable
	// *StepError (code CodeSubtaskGone) that fails the step for good. An
	// operator who knows the outcome can Resolve the step.
	ErrSubtaskGone = errors.New("tasker: sub-task gone")
	// ErrStepTimeout is the cancellation cause of a handler's context when
	// the step's timeout expires.
	ErrStepTimeout = errors.New("tasker: step timed out")

	// errNoPublisher reports a domain event whose publisher is not
	// registered.
	errNoPublisher = errors.New("tasker: no publisher registered under that name")

	// errTaskEnded is the cancellation cause of a handler's context still
	// running when its task ended.
	errTaskEnded = errors.New("tasker: task ended")
)

// Failure codes the engine itself records.
const (
	CodePanic         = "PANIC"           // the handler, or encoding its return, panicked
	CodeNilError      = "NIL_ERROR"       // the handler returned a typed nil error
	CodeGoexit        = "GOEXIT"          // the handler called runtime.Goexit
	CodeResultNotJSON = "RESULT_NOT_JSON" // json.Marshal rejected the result
	CodeTimeout       = "TIMEOUT"         // the step's timeout expired
	CodeTaskDeadline  = "TASK_DEADLINE"   // the task's deadline passed, or passed before the step ran
	CodeResultSchema  = "RESULT_SCHEMA"   // the result broke the step's result_schema
	CodeStale         = "STALE"           // the task went stale by its lifecycle; on its steps cut short and its end
	// CodeDecisionInvalid: a decision step's result is no valid decision
	// for its template (no outcome, a step that does not depend on it, too
	// many steps).
	CodeDecisionInvalid = "DECISION_INVALID"
	// CodeBatchInvalid: a batchable step's result is no valid list of
	// batches.
	CodeBatchInvalid  = "BATCH_INVALID"
	CodeUnknownMethod = "UNKNOWN_METHOD" // a Methods handler has no handler for the step's method
	// CodeInterrupted is the code of an attempt that was in progress when
	// its engine stopped or died; recovery counts it as a retryable failure.
	CodeInterrupted = "INTERRUPTED"
	// CodeTemplateMismatch is the code of a task set aside because its
	// stored steps no longer match its template: on the task's transition
	// to error (its Reason starts with it) and on the steps it cut short.
	CodeTemplateMismatch = "TEMPLATE_MISMATCH"
	// CodeSubtaskGone is the code of the failure of a step whose sub-task
	// was deleted after it ended, before the step read its outcome (see
	// ErrSubtaskGone).
	CodeSubtaskGone = "SUBTASK_GONE"
)

// TemplateError is one problem in a task template, located by file, line and
// field. Loading reports every problem it finds, joined with errors.Join; use
// errors.As to get the first one, or errors.Is(err, ErrInvalidTemplate).
type TemplateError struct {
	File  string // the file name, or the name given to ParseTemplate
	Line  int    // 1-based; 0 when unknown
	Field string // a path such as "steps[2].dependencies"; "" for the whole file
	Msg   string // what is wrong
}

// Error formats the problem as "file:line: field: message".
func (e *TemplateError) Error() string { return (*templatefile.Problem)(e).Error() }

// Unwrap returns ErrInvalidTemplate.
func (e *TemplateError) Unwrap() error { return ErrInvalidTemplate }

// Violation is one way a task input breaks its template's input_schema.
type Violation struct {
	Path    string `json:"path"` // JSON path of the offending value, such as "$.cart_items[0].quantity"
	Message string `json:"message"`
}

// InputError lists every violation of a task input against its template's
// input_schema. Nothing was stored.
type InputError struct {
	Template   string      `json:"template"` // namespace/name@version
	Violations []Violation `json:"violations"`
}

// Error lists every violation.
func (e *InputError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tasker: invalid input for %s:", e.Template)
	for _, v := range e.Violations {
		fmt.Fprintf(&b, " %s: %s;", v.Path, v.Message)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Unwrap returns ErrInvalidInput.
func (e *InputError) Unwrap() error { return ErrInvalidInput }

// ErrorType classifies a step failure, as Tasker's ErrorType does.
type ErrorType string

// The error types of a step failure.
const (
	ErrorValidation ErrorType = "validation_error"
	ErrorHandler    ErrorType = "handler_error"
	ErrorPermanent  ErrorType = "permanent_error"
	ErrorRetryable  ErrorType = "retryable_error"
	ErrorTimeout    ErrorType = "timeout"
)

// StepError is how a handler fails on purpose, the Go form of Tasker's
// StepHandlerResult.failure(...). Return it (or an error wrapping it) from
// StepHandler.Call:
//
//	return nil, &tasker.StepError{
//		Message: "Payment declined", Type: tasker.ErrorPermanent,
//		Code: "PAYMENT_DECLINED", Retryable: false,
//	}
//
// Only a Retryable failure is retried, and only while the step's policy
// allows. Any other error a handler returns is a retryable ErrorHandler
// failure; see StepHandler.
type StepError struct {
	Message   string
	Type      ErrorType // "" means ErrorHandler
	Code      string    // an application code such as "PAYMENT_DECLINED"
	Retryable bool
	// RetryAfter, when positive, replaces the policy's backoff delay for the
	// next attempt; it is still capped by the policy's max_backoff_ms.
	RetryAfter time.Duration
	// Err is an optional underlying cause, returned by Unwrap.
	Err error
}

// Error returns "type [code]: message".
func (e *StepError) Error() string {
	t := e.Type
	if t == "" {
		t = ErrorHandler
	}
	if e.Code != "" {
		return fmt.Sprintf("%s [%s]: %s", t, e.Code, e.Message)
	}
	return fmt.Sprintf("%s: %s", t, e.Message)
}

// Unwrap returns the underlying cause, if any.
func (e *StepError) Unwrap() error { return e.Err }

// ErrDuplicateTask reports a submission whose idempotency key an earlier
// task of the same template (namespace and name) holds: see SubmitUnique.
// It is wrapped by every *DuplicateTaskError.
var ErrDuplicateTask = errors.New("tasker: duplicate task")

// DuplicateTaskError is SubmitUnique's error for a duplicate submission:
// nothing was created, and ID is the earlier task's.
type DuplicateTaskError struct {
	ID             string // the existing task
	IdempotencyKey string
}

// Error names the existing task.
func (e *DuplicateTaskError) Error() string {
	return fmt.Sprintf("tasker: duplicate task: idempotency key %q is held by task %s", e.IdempotencyKey, e.ID)
}

// Unwrap returns ErrDuplicateTask.
func (e *DuplicateTaskError) Unwrap() error { return ErrDuplicateTask }

// ErrNotStarted reports an engine that Start has not been called on.
var ErrNotStarted = errors.New("tasker: engine not started")
