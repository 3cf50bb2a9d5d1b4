package tasker

import (
	"encoding/json"
	"time"

	"github.com/gotasker/tasker/internal/templatefile"
)

// StepType is a step's type, Tasker's step_type.
type StepType string

// The step types of Tasker's template model. Only StepStandard runs today:
// Engine.AddTemplates refuses a template with any other (ErrNotSupported).
const (
	StepStandard            StepType = templatefile.StepStandard
	StepDecision            StepType = templatefile.StepDecision
	StepDeferredConvergence StepType = templatefile.StepDeferredConvergence
	StepBatchable           StepType = templatefile.StepBatchable
	StepBatchWorker         StepType = templatefile.StepBatchWorker
)

// IdentityStrategy is a template's identity_strategy: how a submitted task's
// identity is decided, for deduplication.
type IdentityStrategy string

// The identity strategies a template may name.
const (
	// IdentityStrict derives a task's identity from its template and input.
	IdentityStrict IdentityStrategy = "strict"
	// IdentityCallerProvided takes a task's identity from the caller.
	IdentityCallerProvided IdentityStrategy = "caller_provided"
	// IdentityAlwaysUnique makes every submission a new task.
	IdentityAlwaysUnique IdentityStrategy = "always_unique"
)

// Metadata is a template's metadata block, kept for documentation and
// discovery; the engine does not read it.
type Metadata struct {
	Author           string
	Tags             []string
	DocumentationURL string
	CreatedAt        time.Time // zero when absent
	UpdatedAt        time.Time // zero when absent
}

// SystemDependencies is a template's system_dependencies block: the systems
// its steps talk to.
type SystemDependencies struct {
	Primary   string // "default" when absent
	Secondary []string
}

// DomainEvent is one of a template's domain_events: an event its steps may
// publish.
type DomainEvent struct {
	Name        string
	Description string
	Schema      json.RawMessage // a JSON Schema that compiled at load; nil when absent
}

// EventDeclaration is one of a step's publishes_events. An event either is
// one of the template's domain_events or carries its own Schema.
type EventDeclaration struct {
	Name        string
	Description string
	Schema      json.RawMessage // nil when absent: the domain event's schema applies
	// Condition is when the event is published: "success" (the default),
	// "failure", "retryable_failure", "permanent_failure" or "always".
	Condition string
	// DeliveryMode is "durable" (the default), "fast" or "broadcast".
	DeliveryMode string
	Publisher    string // a custom publisher's name; "" when absent
}

// BatchConfig is a batchable step's batch_config block.
type BatchConfig struct {
	BatchSize      int    // items per batch worker, 1..100000; default 1000
	Parallelism    int    // most batch workers at once, 1..1000; default 10
	CursorField    string // the field a worker's cursor tracks; default "id"
	WorkerTemplate string // the batch_worker step instantiated per batch
	// FailureStrategy is "continue_on_failure" (the default), "fail_fast" or
	// "isolate".
	FailureStrategy string
}

// Lifecycle is a template's lifecycle block: how long its tasks may take,
// and what is done with a task that takes longer. A zero duration is not
// set. The engine does not enforce it yet.
type Lifecycle struct {
	MaxDuration               time.Duration // max_duration_minutes
	MaxWaitingForDependencies time.Duration // max_waiting_for_dependencies_minutes
	MaxWaitingForRetry        time.Duration // max_waiting_for_retry_minutes
	MaxStepsInProcess         time.Duration // max_steps_in_process_minutes
	// StalenessAction is "dlq" (the default), "error" or "none".
	StalenessAction   string
	AutoFailOnTimeout bool
	AutoDLQOnTimeout  bool
}

// TemplateWarning is a field of a template that loaded but is ignored, such
// as a legacy field that Tasker accepts and ignores too, located by file,
// line and field like a TemplateError.
type TemplateWarning struct {
	File  string
	Line  int
	Field string
	Msg   string
}

// String formats the warning as "file:line: field: message".
func (w TemplateWarning) String() string {
	p := templatefile.Problem(w)
	return p.Error()
}
