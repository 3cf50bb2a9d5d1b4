package tasker

import (
	"fmt"
	"slices"
)

// TaskState is the state of a task.
type TaskState string

// The states of a task.
const (
	TaskPending    TaskState = "pending"     // stored, no step started yet
	TaskInProgress TaskState = "in_progress" // at least one step started
	TaskComplete   TaskState = "complete"    // every step completed (or was resolved)
	TaskFailed     TaskState = "error"       // a step failed for good; Retry or Resolve may resume it
	TaskCancelled  TaskState = "cancelled"   // an operator cancelled it
)

// StepState is the state of a step.
type StepState string

// The states of a step.
const (
	StepPending          StepState = "pending"           // waiting for its dependencies
	StepInProgress       StepState = "in_progress"       // an attempt is running
	StepComplete         StepState = "complete"          // succeeded; its result is stored
	StepWaitingForRetry  StepState = "waiting_for_retry" // failed, next attempt scheduled
	StepFailed           StepState = "error"             // failed for good
	StepCancelled        StepState = "cancelled"         // its task was cancelled first
	StepResolvedManually StepState = "resolved_manually" // an operator resolved it; counts as complete
	// StepNotCreated is how Get shows a step of the template that the task
	// does not have: it is downstream of a decision that has not run yet, or
	// that chose other steps. It is never stored and no move leads to it.
	StepNotCreated StepState = "not_created"
)

// transitions is the one table of legal state changes, for tasks and steps
// alike. Every change the engine records is checked against it.
var transitions = map[string][]string{
	"task:" + string(TaskPending):    {string(TaskInProgress), string(TaskCancelled), string(TaskFailed)}, // failed: set aside
	"task:" + string(TaskInProgress): {string(TaskComplete), string(TaskFailed), string(TaskCancelled)},
	"task:" + string(TaskFailed):     {string(TaskInProgress)}, // Retry, Resolve

	"step:":                               {string(StepPending)},                                               // created by a decision
	"step:" + string(StepPending):         {string(StepInProgress), string(StepCancelled), string(StepFailed)}, // failed: the deadline passed first
	"step:" + string(StepInProgress):      {string(StepInProgress) /* a checkpoint */, string(StepComplete), string(StepWaitingForRetry), string(StepFailed), string(StepCancelled)},
	"step:" + string(StepWaitingForRetry): {string(StepInProgress), string(StepCancelled), string(StepFailed)},
	"step:" + string(StepFailed):          {string(StepPending), string(StepResolvedManually)}, // Retry, Resolve
}

func legal(kind, from, to string) bool {
	return slices.Contains(transitions[kind+":"+from], to)
}

// CanMoveTo reports whether a task may move from s to next.
func (s TaskState) CanMoveTo(next TaskState) bool { return legal("task", string(s), string(next)) }

// CanMoveTo reports whether a step may move from s to next.
func (s StepState) CanMoveTo(next StepState) bool { return legal("step", string(s), string(next)) }

// Ended reports whether the engine does no more work on a task in state s
// unless an operator acts: complete, error or cancelled.
func (s TaskState) Ended() bool {
	return s == TaskComplete || s == TaskFailed || s == TaskCancelled
}

// Ended reports whether a step in state s will not run again unless an
// operator acts: complete, error, cancelled or resolved_manually.
func (s StepState) Ended() bool {
	return s == StepComplete || s == StepFailed || s == StepCancelled || s == StepResolvedManually
}

// Done reports whether a step in state s lets its dependents run: complete
// or resolved_manually.
func (s StepState) Done() bool { return s == StepComplete || s == StepResolvedManually }

// checkStep returns an error wrapping ErrIllegalTransition unless the table
// allows from → to.
func checkStep(step string, from, to StepState) error {
	if !from.CanMoveTo(to) {
		return fmt.Errorf("%w: step %s: %s -> %s", ErrIllegalTransition, step, from, to)
	}
	return nil
}

func checkTask(id string, from, to TaskState) error {
	if !from.CanMoveTo(to) {
		return fmt.Errorf("%w: task %s: %s -> %s", ErrIllegalTransition, id, from, to)
	}
	return nil
}
