package tasker

import (
	"errors"
	"testing"
)

func TestStepTransitionTable(t *testing.T) {
	legalMoves := map[[2]StepState]bool{
		{StepPending, StepInProgress}:         true,
		{StepInProgress, StepComplete}:        true,
		{StepInProgress, StepWaitingForRetry}: true,
		{StepInProgress, StepFailed}:          true,
		{StepWaitingForRetry, StepInProgress}: true,
	}
	all := []StepState{StepPending, StepInProgress, StepComplete, StepWaitingForRetry, StepFailed}
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
	for _, s := range all {
		if want := s == StepComplete || s == StepFailed; s.Terminal() != want {
			t.Errorf("%s.Terminal() = %v, want %v", s, s.Terminal(), want)
		}
	}
}

func TestTaskTransitionTable(t *testing.T) {
	all := []TaskState{TaskPending, TaskInProgress, TaskComplete, TaskFailed}
	legalMoves := map[[2]TaskState]bool{
		{TaskPending, TaskInProgress}:  true,
		{TaskInProgress, TaskComplete}: true,
		{TaskInProgress, TaskFailed}:   true,
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
}
