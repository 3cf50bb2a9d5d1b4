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
	TaskComplete   TaskState = "complete"    // every step completed
	TaskFailed     TaskState = "error"       // a step failed for good
)

// StepState is the state of a step.
type StepState string

// The states of a step.
const (
	StepPending         StepState = "pending"           // waiting for its dependencies
	StepInProgress      StepState = "in_progress"       // an attempt is running
	StepComplete        StepState = "complete"          // succeeded; its result is stored
	StepWaitingForRetry StepState = "waiting_for_retry" // failed, next attempt scheduled
	StepFailed          StepState = "error"             // failed for good
)

// transitions is the one table of legal state changes, for tasks and steps
// alike. Every change the engine records is checked against it.
var transitions = map[string][]string{
	"task:" + string(TaskPending):    {string(TaskInProgress)},
	"task:" + string(TaskInProgress): {string(TaskComplete), string(TaskFailed)},

	"step:" + string(StepPending):         {string(StepInProgress)},
	"step:" + string(StepInProgress):      {string(StepComplete), string(StepWaitingForRetry), string(StepFailed)},
	"step:" + string(StepWaitingForRetry): {string(StepInProgress)},
}

func legal(kind, from, to string) bool {
	return slices.Contains(transitions[kind+":"+from], to)
}

// CanMoveTo reports whether a task may move from s to next.
func (s TaskState) CanMoveTo(next TaskState) bool { return legal("task", string(s), string(next)) }

// CanMoveTo reports whether a step may move from s to next.
func (s StepState) CanMoveTo(next StepState) bool { return legal("step", string(s), string(next)) }

// Terminal reports whether no further transition leaves s.
func (s TaskState) Terminal() bool { return len(transitions["task:"+string(s)]) == 0 }

// Terminal reports whether no further transition leaves s.
func (s StepState) Terminal() bool { return len(transitions["step:"+string(s)]) == 0 }

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
