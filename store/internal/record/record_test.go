package record

import (
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/gotasker/tasker/store"
)

var uuid7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestPrepareTaskFillsEmptyIDWithUUIDv7(t *testing.T) {
	task, steps, err := PrepareTask(store.Task{Name: "order"}, []store.Step{{Name: "a"}})
	if err != nil {
		t.Fatalf("PrepareTask: %v", err)
	}
	if !uuid7.MatchString(task.ID) {
		t.Errorf("PrepareTask filled ID %q, want a version 7 UUID", task.ID)
	}
	if len(steps) != 1 || steps[0].TaskID != task.ID {
		t.Errorf("PrepareTask steps = %+v, want one with TaskID %q", steps, task.ID)
	}
}

func TestPrepareTaskKeepsGivenID(t *testing.T) {
	task, _, err := PrepareTask(store.Task{ID: "t1"}, nil)
	if err != nil || task.ID != "t1" {
		t.Errorf("PrepareTask(ID t1) = %q, %v; want t1, nil", task.ID, err)
	}
}

func TestPrepareChangesMakesTheDeadLetterEntry(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	given := &store.DeadLetter{TaskID: "other", Reason: "staleness", Message: "m",
		Status: store.DeadLetterResolved, CreatedAt: at.Add(time.Hour), ResolvedAt: at, ResolvedBy: "b", Resolution: "r"}
	cs, err := PrepareChanges([]store.Change{
		{TaskID: "t1", From: "running", To: "error", At: at, DeadLetter: given},
		{TaskID: "t1", From: "error", To: "error", At: at, DeadLetter: &store.DeadLetter{}},
	})
	if err != nil {
		t.Fatalf("PrepareChanges: %v", err)
	}
	d := cs[0].DeadLetter
	if d == given {
		t.Fatal("PrepareChanges kept the caller's DeadLetter pointer")
	}
	if !uuid7.MatchString(d.ID) || d.ID == cs[1].DeadLetter.ID {
		t.Errorf("filled IDs %q and %q, want two different version 7 UUIDs", d.ID, cs[1].DeadLetter.ID)
	}
	want := store.DeadLetter{ID: d.ID, TaskID: "t1", Reason: "staleness", Message: "m",
		Status: store.DeadLetterPending, CreatedAt: at.UTC()}
	if *d != want || d.CreatedAt.Location() != time.UTC {
		t.Errorf("prepared DeadLetter = %+v, want %+v", *d, want)
	}
	if given.TaskID != "other" || given.ID != "" {
		t.Errorf("PrepareChanges changed the caller's DeadLetter: %+v", *given)
	}
}

func TestPrepareChangesRejectsDeadLettersOnSteps(t *testing.T) {
	for name, c := range map[string]store.Change{
		"DeadLetter":         {TaskID: "t1", Step: "a", DeadLetter: &store.DeadLetter{}},
		"ResolveDeadLetters": {TaskID: "t1", Step: "a", ResolveDeadLetters: true},
	} {
		if _, err := PrepareChanges([]store.Change{c}); !errors.Is(err, errStepDeadLetter) {
			t.Errorf("PrepareChanges of a step change with %s: %v, want errStepDeadLetter", name, err)
		}
	}
}
