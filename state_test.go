package tasker

import (
	"errors"
	"testing"
)

func TestStepTransitionTable(t *testing.T) {
	legalMoves := map[[2]StepState]bool{
		{StepPending, StepInProgress}:         true,
		{StepPending, StepCancelled}:          true,
		{StepPending, StepFailed}:             true,
		{StepInProgress, StepInProgress}:      true, // a checkpoint
		{StepInProgress, StepComplete}:        true,
		{StepInProgress, StepWaitingForRetry}: true,
		{StepInProgress, StepFailed}:          true,
		{StepInProgress, StepCancelled}:       true,
		{StepWaitingForRetry, StepInProgress}: true,
		{StepWaitingForRetry, StepCancelled}:  true,
		{StepWaitingForRetry, StepFailed}:     true,
		{StepFailed, StepPending}:             true,
		{StepFailed, StepResolvedManually}:    true,
	}
	all := []StepState{StepPending, StepInProgress, StepComplete, StepWaitingForRetry, StepFailed, StepCancelled, StepResolvedManually}
	for _, from := range all {
		for _, to := range all {
			want := legalMoves[[2]StepState{from, to}]
			if got := from.CanMoveTo(to); got != want {
				t.Errorf("%s -> %s: CanMoveTo = %v, want %v", from, to, got, want)
			}
			if err := checkStep("s", from, to); (err == nil) != want || (err != nil && !errors.Is(err, ErrIllegalTransition)) {
				t.Errorf("%s -> %s: checkStep = %v", from, to, err)
			}
		}
	}
	for _, s := range []StepState{StepComplete, StepCancelled, StepResolvedManually} {
		if len(transitions["step:"+string(s)]) != 0 {
			t.Errorf("%s must be final", s)
		}
	}
	for _, s := range all {
		if want := s == StepComplete || s == StepResolvedManually; s.Done() != want {
			t.Errorf("%s.Done() = %v, want %v", s, s.Done(), want)
		}
	}
}

func TestTaskTransitionTable(t *testing.T) {
	all := []TaskState{TaskPending, TaskInProgress, TaskComplete, TaskFailed, TaskCancelled}
	legalMoves := map[[2]TaskState]bool{
		{TaskPending, TaskInProgress}:   true,
		{TaskPending, TaskCancelled}:    true,
		{TaskPending, TaskFailed}:       true,
		{TaskInProgress, TaskComplete}:  true,
		{TaskInProgress, TaskFailed}:    true,
		{TaskInProgress, TaskCancelled}: true,
		{TaskFailed, TaskInProgress}:    true,
	}
	for _, from := range all {
		for _, to := range all {
			want := legalMoves[[2]TaskState{from, to}]
			if got := from.CanMoveTo(to); got != want {
				t.Errorf("%s -> %s: CanMoveTo = %v, want %v", from, to, got, want)
			}
			if err := checkTask("t", from, to); (err == nil) != want {
				t.Errorf("%s -> %s: checkTask = %v", from, to, err)
			}
		}
	}
	for _, s := range all {
		if want := s != TaskPending && s != TaskInProgress; s.Ended() != want {
			t.Errorf("%s.Ended() = %v, want %v", s, s.Ended(), want)
		}
	}
}
