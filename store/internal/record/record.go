// Package record holds the checks and copies every store backend applies to
// the records it is handed, so that backends behave identically where
// store.go leaves a choice: how an empty task ID is filled, how times are
// normalised, what a conflict error says.
package record

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/gotasker/tasker/internal/uuid"
	"github.com/gotasker/tasker/store"
)

// Times outside [minTime, maxTime] have no int64 Unix-nanosecond form.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// PrepareTask checks a task and its steps for CreateTask and returns deep
// copies ready to store: an empty ID replaced by a version 7 UUID of the
// time of the call (uuid.NewV7), every step's TaskID set to the task's ID,
// times in UTC without a monotonic reading.
func PrepareTask(task store.Task, steps []store.Step) (store.Task, []store.Step, error) {
	t := CloneTask(task)
	if t.ID == "" {
		t.ID = uuid.NewV7(time.Now())
	}
	if err := checkTimes(t.CreatedAt, t.UpdatedAt, t.Deadline); err != nil {
		return store.Task{}, nil, fmt.Errorf("task %q: %w", t.ID, err)
	}
	out := make([]store.Step, len(steps))
	seen := make(map[string]bool, len(steps))
	for i, s := range steps {
		if s.Name == "" {
			return store.Task{}, nil, fmt.Errorf("task %q: step %d has no name", t.ID, i)
		}
		if seen[s.Name] {
			return store.Task{}, nil, fmt.Errorf("task %q: duplicate step name %q", t.ID, s.Name)
		}
		seen[s.Name] = true
		if err := checkTimes(s.NextAttemptAt, s.UpdatedAt); err != nil {
			return store.Task{}, nil, fmt.Errorf("task %q: step %q: %w", t.ID, s.Name, err)
		}
		out[i] = CloneStep(s)
		out[i].TaskID = t.ID
	}
	return t, out, nil
}

// PrepareChanges checks a batch for Apply and returns deep copies with times
// in UTC; a zero At becomes the time of the call, an empty Result or
// Checkpoint becomes nil. A task change's DeadLetter
// becomes the entry to add (see Change.DeadLetter); a step change with a
// DeadLetter or ResolveDeadLetters is an error.
func PrepareChanges(changes []store.Change) ([]store.Change, error) {
	return AppendPrepared(make([]store.Change, 0, len(changes)), changes)
}

// AppendPrepared is PrepareChanges appending the copies to dst, so a caller
// can keep them in memory of its own.
func AppendPrepared(dst, changes []store.Change) ([]store.Change, error) {
	var now time.Time // read once, and only if a change needs it
	for i, c := range changes {
		if c.At.IsZero() {
			if now.IsZero() {
				now = time.Now()
			}
			c.At = now
		}
		if err := checkTimes(c.At, c.NextAttemptAt, c.Deadline); err != nil {
			return nil, fmt.Errorf("change %d: %w", i, err)
		}
		c.At = UTC(c.At)
		c.NextAttemptAt = UTC(c.NextAttemptAt)
		c.Deadline = UTC(c.Deadline)
		c.Result = cloneBytes(c.Result)
		c.Checkpoint = cloneBytes(c.Checkpoint) // empty becomes nil: keep the stored one
		c.Error = CloneFailure(c.Error)
		if c.Step != "" && (c.DeadLetter != nil || c.ResolveDeadLetters) {
			return nil, fmt.Errorf("change %d (task %q step %q): %w", i, c.TaskID, c.Step, errStepDeadLetter)
		}
		c.DeadLetter = deadLetterOf(c)
		c.Outbox = outboxOf(c)
		dst = append(dst, c)
	}
	return dst, nil
}

var errStepDeadLetter = errors.New("DeadLetter and ResolveDeadLetters apply to task changes only")

// deadLetterOf returns a copy of the DeadLetter of c, a task change with its
// At in UTC, as the entry to store, or nil: TaskID is c's, Status is
// store.DeadLetterPending, CreatedAt is c.At, the resolution fields are
// cleared, and an empty ID becomes a version 7 UUID of the time of the call.
func deadLetterOf(c store.Change) *store.DeadLetter {
	if c.DeadLetter == nil {
		return nil
	}
	d := store.DeadLetter{
		ID: c.DeadLetter.ID, TaskID: c.TaskID,
		Reason: c.DeadLetter.Reason, Message: c.DeadLetter.Message,
		Status: store.DeadLetterPending, CreatedAt: c.At,
	}
	if d.ID == "" {
		d.ID = uuid.NewV7(time.Now())
	}
	return &d
}

// outboxOf returns copies of the Outbox entries of c, a change with its At
// in UTC, as the entries to store, or nil: TaskID is c's, CreatedAt is c.At,
// and an empty ID becomes a version 7 UUID of the time of the call.
func outboxOf(c store.Change) []store.OutboxEntry {
	if len(c.Outbox) == 0 {
		return nil
	}
	out := make([]store.OutboxEntry, len(c.Outbox))
	for i, e := range c.Outbox {
		out[i] = store.OutboxEntry{ID: e.ID, TaskID: c.TaskID, Data: cloneBytes(e.Data), CreatedAt: c.At}
		if out[i].ID == "" {
			out[i].ID = uuid.NewV7(time.Now())
		}
	}
	return out
}

// CloneOutbox returns a deep copy of entries.
func CloneOutbox(entries []store.OutboxEntry) []store.OutboxEntry {
	out := make([]store.OutboxEntry, len(entries))
	for i, e := range entries {
		e.Data = cloneBytes(e.Data)
		out[i] = e
	}
	return out
}

// Conflict returns the error for change i of a batch that did not match; it
// wraps store.ErrConflict.
func Conflict(i int, c store.Change, format string, args ...any) error {
	where := fmt.Sprintf("task %q", c.TaskID)
	if c.Step != "" {
		where += fmt.Sprintf(" step %q", c.Step)
	}
	return fmt.Errorf("change %d (%s): %s: %w", i, where, fmt.Sprintf(format, args...), store.ErrConflict)
}

// LeaseLost returns the error for change i of a batch whose fencing token
// (Change.Lease) is not the task's, which is token; it wraps
// store.ErrLeaseLost, and so store.ErrConflict.
func LeaseLost(i int, c store.Change, token int64) error {
	return fmt.Errorf("change %d (task %q): the task's lease token is %d, not %d: %w",
		i, c.TaskID, token, c.Lease, store.ErrLeaseLost)
}

// Transition returns the audit entry recording c, which must have been
// prepared; a task change records attempt 0 and no error.
func Transition(c store.Change) store.Transition {
	attempt, failure := c.Attempt, c.Error
	if c.Step == "" {
		attempt, failure = 0, nil
	}
	return store.Transition{
		TaskID: c.TaskID, Step: c.Step, From: c.From, To: c.To,
		Attempt: attempt, At: c.At, By: c.By, Reason: c.Reason, Error: failure,
	}
}

// UTC returns t in UTC without a monotonic clock reading; the zero time stays
// zero.
func UTC(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// CloneTask returns a deep copy of t with its times normalised by UTC. An
// empty Tags or Context becomes nil.
func CloneTask(t store.Task) store.Task {
	t.Tags = slices.Clone(t.Tags)
	if len(t.Tags) == 0 {
		t.Tags = nil
	}
	t.Context = cloneBytes(t.Context)
	t.Trace = maps.Clone(t.Trace)
	if len(t.Trace) == 0 {
		t.Trace = nil
	}
	t.CreatedAt = UTC(t.CreatedAt)
	t.UpdatedAt = UTC(t.UpdatedAt)
	t.Deadline = UTC(t.Deadline)
	return t
}

// CloneStep returns a deep copy of s with its times normalised by UTC. An
// empty Result or Checkpoint becomes nil.
func CloneStep(s store.Step) store.Step {
	s.Result = cloneBytes(s.Result)
	s.Checkpoint = cloneBytes(s.Checkpoint)
	s.Error = CloneFailure(s.Error)
	s.NextAttemptAt = UTC(s.NextAttemptAt)
	s.UpdatedAt = UTC(s.UpdatedAt)
	return s
}

// CloneFailure returns a copy of f, or nil.
func CloneFailure(f *store.Failure) *store.Failure {
	if f == nil {
		return nil
	}
	c := *f
	return &c
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return slices.Clone(b)
}

var errTimeRange = errors.New("time outside the years 1678 to 2262 cannot be stored")

// checkTimes reports a non-zero time that has no int64 Unix-nanosecond form.
func checkTimes(ts ...time.Time) error {
	for _, t := range ts {
		if !t.IsZero() && (t.Before(minTime) || t.After(maxTime)) {
			return fmt.Errorf("%w: %s", errTimeRange, t.Format(time.RFC3339))
		}
	}
	return nil
}
