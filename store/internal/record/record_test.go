package record

import (
	"regexp"
	"testing"

	"github.com/gotasker/tasker/store"
)

func TestPrepareTaskFillsEmptyIDWithUUIDv7(t *testing.T) {
	uuid7 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
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
