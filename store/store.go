// Package store defines how tasker persists tasks, steps and their audit
// trail. It knows nothing of DAGs, handlers or which step runs next: the
// engine decides, and a Store only records what it is told, atomically.
//
// Backends live in sub-packages (store/memory, store/sqlite) and all pass the
// conformance suite in store/storetest, which is this package's executable
// specification; its package comment lists the points it pins down beyond
// these comments.
//
// Times are stored exactly, to the nanosecond, and come back in UTC; the
// zero time means "not set". Non-zero times must lie within the years
// 1678–2262 (an int64 of Unix nanoseconds). JSON values (Context, Result)
// come back byte for byte; nil and empty are the same.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors every backend returns (possibly wrapped), so callers can
// test them with errors.Is.
var (
	// ErrNotFound reports that a task does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict reports that a change's expected state or attempt did not
	// match what is stored, or named an unknown task or step; the whole batch
	// it belonged to was not applied. CreateTask also returns it for a task
	// ID that is already taken.
	ErrConflict = errors.New("store: conflict")
	// ErrClosed reports a call on a closed store.
	ErrClosed = errors.New("store: closed")
	// ErrLocked reports that a backend could not be opened because another
	// Store, in this process or another, holds its data for writing.
	ErrLocked = errors.New("store: locked")
)

// Task is a stored task. States are plain strings: their meaning belongs to
// the tasker package.
type Task struct {
	ID             string // CreateTask fills an empty ID with a unique one
	Namespace      string
	Name           string
	Version        string
	State          string
	Initiator      string
	SourceSystem   string
	Reason         string
	Tags           []string
	Context        json.RawMessage // the task input, as submitted
	IdempotencyKey string          // "" when none was given
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Deadline       time.Time // zero when the task has none
	// Trace is the trace context of the submission, as the engine's
	// Config.CaptureContext returned it (W3C traceparent and tracestate,
	// say), stored with the task so that its steps continue the
	// submitter's trace after a restart; nil when none.
	Trace map[string]string
	// Owner is the engine holding the task's lease (see Leaser), as read;
	// "" when none does or the store is not a Leaser. CreateTask ignores it.
	Owner string
}

// Step is a stored step of a task.
type Step struct {
	TaskID        string // set by CreateTask to the task's ID
	Name          string // unique within the task, not empty
	Position      int    // order within the task, from 0; Steps lists by it, then by Name
	State         string
	Attempts      int             // attempts started so far
	Result        json.RawMessage // nil until the step completes
	Error         *Failure        // the last failure, nil when none
	NextAttemptAt time.Time       // zero unless waiting for a retry
	UpdatedAt     time.Time
	// Checkpoint is what the step's handler saved of its progress, as
	// JSON, so that a later attempt resumes from it; nil when none.
	Checkpoint json.RawMessage
}

// Failure is a persisted step failure: data, not a Go error type.
type Failure struct {
	Message   string `json:"message"`
	Type      string `json:"type"`
	Code      string `json:"code,omitempty"`
	Retryable bool   `json:"retryable"`
	Attempt   int    `json:"attempt"`
	Stack     string `json:"stack,omitempty"` // set when the handler panicked
}

// Transition is one entry of a task's audit trail: a task (Step == "") or
// one of its steps moved From one state To another.
type Transition struct {
	TaskID  string
	Step    string // "" for a task-level transition
	From    string
	To      string
	Attempt int // the step's attempt after the move; 0 for a task
	At      time.Time
	By      string // who asked, for operator actions; "" for the engine
	Reason  string // why, when given
	// Error is the Error of the step change that made the transition, as
	// given (a change carries the step's latest failure, so several
	// transitions may hold the same one); nil for a task change or a change
	// without one.
	Error *Failure
}

// Change moves a task or one of its steps from an expected state to a new
// one, and records the move as a Transition. It is a compare-and-swap: a
// step change applies only while the step's stored state is From and its
// stored attempts equal FromAttempt; a task change (Step == "") only while
// the task's state is From.
//
// A step change with an empty From creates the step, for a running task
// that gains steps: it applies only while the task exists and has no step
// of that name, and stores the step with State To, Position, Attempts
// (Attempt), Result, Error and NextAttemptAt, UpdatedAt At; its transition
// is recorded from "".
//
// For a step change the new values replace the stored ones whole: State (To),
// Attempts (Attempt), Result, Error and NextAttemptAt; the step's UpdatedAt
// becomes At. For a task change the state moves, the task's UpdatedAt
// becomes At and, when Deadline is set, so does its deadline; FromAttempt
// and Attempt are ignored.
//
// At is when the change happened; the zero time means the time of the Apply.
type Change struct {
	TaskID        string
	Step          string // "" for a task change
	From          string
	FromAttempt   int
	To            string
	Attempt       int
	Result        json.RawMessage
	Error         *Failure
	NextAttemptAt time.Time
	Position      int // a created step's position (see below)
	// Checkpoint, on a step change, when not nil replaces the step's
	// checkpoint; nil keeps the stored one (a claim, an outcome and a reset
	// leave it as it is). A step the change creates (From "") starts with it.
	Checkpoint json.RawMessage
	Deadline   time.Time // a task change's new deadline; zero keeps the stored one
	At         time.Time
	By         string
	Reason     string
	// DeadLetter, on a task change, adds an entry for the task to the
	// dead-letter list, atomically with the change: the store sets its
	// TaskID to the change's, its Status to DeadLetterPending, its
	// CreatedAt to At, and fills an empty ID with a unique one.
	DeadLetter *DeadLetter
	// ResolveDeadLetters, on a task change, resolves every pending entry of
	// the task, atomically with the change: each becomes DeadLetterResolved
	// with ResolvedAt = At, ResolvedBy = By and Resolution = Reason.
	// On a step change, DeadLetter and ResolveDeadLetters are rejected:
	// Apply returns an error and applies nothing of the batch.
	ResolveDeadLetters bool
	// Outbox, on any change, adds entries to the outbox (see Outboxer),
	// atomically with the change: the store sets each entry's TaskID to the
	// change's and its CreatedAt to At, and fills an empty ID with a unique
	// one. An ID already pending, or given twice in one batch, wraps
	// ErrConflict and the batch is not applied. Only a Store that is an
	// Outboxer keeps them; the engine gives none to another.
	Outbox []OutboxEntry
	// Lease, when not zero, fences the change (see Leaser): it applies only
	// while the task's lease token is Lease, and otherwise the batch is not
	// applied and Apply's error wraps ErrLeaseLost. A Store that is not a
	// Leaser ignores it.
	Lease int64
}

// OutboxEntry is a message to deliver once the change that carries it is
// stored, such as a domain event. The store keeps it, opaque, until it is
// acknowledged.
type OutboxEntry struct {
	ID        string
	TaskID    string
	Data      json.RawMessage // what to deliver; kept byte for byte
	CreatedAt time.Time
}

// Outboxer is an optional ability of a Store: a transactional outbox.
// Entries ride on the changes of an Apply (Change.Outbox) and are stored
// in its write, so a message is recorded if and only if the change is;
// whoever delivers them reads them with PendingOutbox and removes them once
// delivered with AckOutbox. Delivery is at least once: an entry delivered
// but not yet acknowledged when a process stops is pending for the next.
type Outboxer interface {
	// PendingOutbox returns the entries not yet acknowledged, in the order
	// they were added. after, when not empty, keeps only the entries added
	// after the pending entry with that ID (an unknown ID matches nothing);
	// limit caps their number (0 or less: no limit).
	PendingOutbox(ctx context.Context, after string, limit int) ([]OutboxEntry, error)
	// AckOutbox removes the entries with these IDs; IDs not pending are
	// ignored, so acknowledging twice is harmless.
	AckOutbox(ctx context.Context, ids []string) error
}

// DeadLetter is an entry of the dead-letter list: a task set aside for an
// operator to look into, and why.
type DeadLetter struct {
	ID         string
	TaskID     string
	Reason     string // why, such as "staleness" or "retries_exhausted"
	Message    string // what happened, for people
	Status     string // DeadLetterPending or DeadLetterResolved
	CreatedAt  time.Time
	ResolvedAt time.Time // zero while pending
	ResolvedBy string
	Resolution string
}

// The states of a dead-letter entry.
const (
	DeadLetterPending  = "pending"
	DeadLetterResolved = "resolved"
)

// DeadLetterFilter selects entries for DeadLetters. Empty fields match every
// entry.
type DeadLetterFilter struct {
	TaskID string
	Status string // DeadLetterPending or DeadLetterResolved
	Limit  int    // at most this many; 0 (or less) means no limit
}

// Filter selects tasks for ListTasks. Empty fields match everything.
type Filter struct {
	Namespace    string
	Name         string
	States       []string // any of these; empty means every state
	Initiator    string
	SourceSystem string
	Tags         []string // every one of these
	// After, when set, keeps only the tasks created after the task with this
	// ID (in creation order), for paging; an unknown ID matches nothing.
	After string
	Limit int // at most this many; 0 (or less) means no limit
}

// Snapshot is a task with its steps and audit trail, as read at one moment.
type Snapshot struct {
	Task        Task
	Steps       []Step       // ordered by Position
	Transitions []Transition // oldest first
}

// Snapshotter is an optional ability of a Store: reading a task, its steps
// and its audit trail in one consistent read, cheaper than three calls.
// The engine's Get uses it when the store has it.
type Snapshotter interface {
	// Snapshot returns the task id with its steps and transitions, or an
	// error wrapping ErrNotFound.
	Snapshot(ctx context.Context, id string) (Snapshot, error)
}

// Store persists tasks. Implementations are safe for concurrent use.
//
// Writes are atomic: CreateTask stores a task and all its steps, or nothing;
// Apply applies every change of a batch, or none. A write is durable, to the
// backend's stated level, when the call returns. A backend should return an
// error only when it wrote nothing: a context that ends once a write has
// started does not cut the write short. A backend that cannot promise this
// (a network database whose commit acknowledgement is lost) may return an
// error for a write that happened; the engine checks for that.
type Store interface {
	// CreateTask stores task and its steps in one atomic write and returns the
	// task's ID and true. If task.IdempotencyKey is set and a task of the same
	// Namespace and Name (of any Version) already has that key, it stores
	// nothing and returns the existing task's ID and false; keys are scoped
	// per template, so tasks of other templates may reuse a key. The task's CreatedAt and UpdatedAt are kept as given, and so
	// are the steps' fields. An empty task.ID is filled with a unique one; an
	// ID already taken is an error wrapping ErrConflict.
	CreateTask(ctx context.Context, task Task, steps []Step) (id string, created bool, err error)

	// Apply applies a batch of changes atomically, in order, each one checked
	// against the state left by the ones before it. If any change does not
	// match (see Change), none is applied and the error wraps ErrConflict; a
	// change naming an unknown task or step also wraps ErrConflict.
	Apply(ctx context.Context, changes []Change) error

	// Task returns a task, or an error wrapping ErrNotFound.
	Task(ctx context.Context, id string) (Task, error)

	// Steps returns a task's steps ordered by Position, or an error wrapping
	// ErrNotFound when the task does not exist.
	Steps(ctx context.Context, taskID string) ([]Step, error)

	// Transitions returns a task's audit trail, oldest first, in the order
	// the changes were applied (not by At), or an error wrapping ErrNotFound
	// when the task does not exist.
	Transitions(ctx context.Context, taskID string) ([]Transition, error)

	// DeadLetters returns the dead-letter entries that match f, oldest
	// first (in the order they were added).
	DeadLetters(ctx context.Context, f DeadLetterFilter) ([]DeadLetter, error)
	// ListTasks returns the tasks that match f, oldest first: in the order
	// they were created, not by CreatedAt.
	ListTasks(ctx context.Context, f Filter) ([]Task, error)

	// Close releases the store. Calls after Close return an error wrapping
	// ErrClosed; Close itself is idempotent, and a second Close returns nil.
	Close() error
}
