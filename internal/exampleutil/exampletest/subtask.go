package exampletest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotasker/tasker"
)

// Subtask is what a case expects of the sub-task one step of its task
// started (StepContext.Subtask).
type Subtask struct {
	// TemplateYAML is the sub-task's template: it is read back with it and
	// its order checked against it.
	TemplateYAML []byte
	// State is the sub-task's expected end state.
	State tasker.TaskState
	// Steps, Results and Attempts are as in Case, of the sub-task.
	Steps    map[string]tasker.StepState
	Results  map[string]string
	Attempts map[string]int
	// Inspect, when set, makes further checks of the stored sub-task.
	Inspect func(t *testing.T, parent, child *tasker.Task)
}

// expect returns what s expects of its sub-task.
func (s Subtask) expect() expect { return expect{s.State, s.Steps, s.Results, s.Attempts} }

// checkSubtasks checks, for each step subs names, that it is linked to a
// sub-task, which the output printed, which meets the expectations, ran
// in order and within the step's attempts (CheckWithin); and that the file
// db holds no task but task and those sub-tasks.
func checkSubtasks(t *testing.T, db, out string, task *tasker.Task, tmpl *tasker.Template, subs map[string]Subtask) {
	t.Helper()
	tmpls, of := subtemplates(t, tmpl, subs)
	ids := []string{task.ID}
	readStored(t, db, tmpls, func(eng *tasker.Engine) {
		for _, name := range slices.Sorted(maps.Keys(subs)) {
			s := task.Step(name)
			if s == nil || s.Subtask == "" {
				t.Errorf("step %s started no sub-task", name)
				continue
			}
			ids = append(ids, s.Subtask)
			child, err := eng.Get(context.Background(), s.Subtask)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "task "+child.ID+" ") {
				t.Errorf("output does not show sub-task %s:\n%s", child.ID, out)
			}
			checkSteps(t, child, subs[name].expect())
			CheckOrder(t, child, of[name])
			CheckWithin(t, s, child)
			if subs[name].Inspect != nil {
				subs[name].Inspect(t, task, child)
			}
		}
		checkOnly(t, eng, ids)
	})
}

// subtemplates parses the sub-tasks' templates: it returns tmpl and each
// distinct one, to load, and the template of each step's sub-task.
func subtemplates(t *testing.T, tmpl *tasker.Template, subs map[string]Subtask) ([]*tasker.Template, map[string]*tasker.Template) {
	t.Helper()
	tmpls, of := []*tasker.Template{tmpl}, make(map[string]*tasker.Template, len(subs))
	for name, sub := range subs {
		child, err := tasker.ParseTemplate("sub-task of "+name, sub.TemplateYAML)
		if err != nil {
			t.Fatal(err)
		}
		same := func(o *tasker.Template) bool {
			return o.Namespace == child.Namespace && o.Name == child.Name && o.Version == child.Version
		}
		if k := slices.IndexFunc(tmpls, same); k >= 0 {
			child = tmpls[k]
		} else {
			tmpls = append(tmpls, child)
		}
		of[name] = child
	}
	return tmpls, of
}

// CheckWithin checks that child, the sub-task step s started, was created
// and started no earlier than s's first attempt began, and ended no later
// than s did.
func CheckWithin(t testing.TB, s *tasker.Step, child *tasker.Task) {
	t.Helper()
	began := firstStart(s)
	for what, at := range map[string]time.Time{"created": child.CreatedAt, "started": child.StartedAt} {
		if began.IsZero() || at.IsZero() || at.Before(began) {
			t.Errorf("sub-task %s %s at %s, before step %s began (at %s)", child.ID, what,
				at.Format(time.RFC3339Nano), s.Name, began.Format(time.RFC3339Nano))
		}
	}
	if !s.FinishedAt.IsZero() && (child.FinishedAt.IsZero() || s.FinishedAt.Before(child.FinishedAt)) {
		t.Errorf("step %s finished at %s, before its sub-task %s ended (at %s)", s.Name,
			s.FinishedAt.Format(time.RFC3339Nano), child.ID, child.FinishedAt.Format(time.RFC3339Nano))
	}
}

// checkOnly checks that eng's store holds exactly the tasks ids.
func checkOnly(t *testing.T, eng *tasker.Engine, ids []string) {
	t.Helper()
	all, err := eng.List(context.Background(), tasker.TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, task := range all {
		stored = append(stored, task.ID)
	}
	slices.Sort(stored)
	slices.Sort(ids)
	if !slices.Equal(stored, ids) {
		t.Errorf("the file holds tasks %v, want %v: the task and its sub-tasks only", stored, ids)
	}
}
