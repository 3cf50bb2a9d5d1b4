// Package exampletest runs an example end to end in tests: it calls the
// example's run function with a fresh SQLite file, checks what it printed
// and returned, then reads the task back from the file and checks its
// steps' states and results, and that no step started before all its
// dependencies had finished; likewise the sub-tasks its steps started.
// Dynamic workflows are read back with their
// template, so steps a decision did not create show as not_created and a
// batch worker template as its instances.
package exampletest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/exampleutil"
	"github.com/gotasker/tasker/store/sqlite"
)

// Case is one run of an example.
type Case struct {
	// Name names the subtest.
	Name string
	// Args are the example's arguments; Check adds -db.
	Args []string
	// State is the task's expected end state.
	State tasker.TaskState
	// Steps maps a step's name to its expected state; a step not listed
	// must be complete when State is complete.
	Steps map[string]tasker.StepState
	// Results maps a step's name to its expected result, as JSON.
	Results map[string]string
	// Attempts maps a step's name to its expected attempts; a step not
	// listed must have been attempted once if it ran.
	Attempts map[string]int
	// Output lists regular expressions the printed output must match.
	Output []string
	// Inspect, when set, makes further checks of the stored task.
	Inspect func(t *testing.T, task *tasker.Task)
	// Subtasks, when set, maps each step of the task that started a
	// sub-task to what is expected of it; the file must then hold only the
	// task and those sub-tasks.
	Subtasks map[string]Subtask
}

// expect is what is expected of one stored task.
type expect struct {
	state    tasker.TaskState
	steps    map[string]tasker.StepState
	results  map[string]string
	attempts map[string]int
}

// expect returns what c expects of its task.
func (c Case) expect() expect { return expect{c.State, c.Steps, c.Results, c.Attempts} }

var taskLine = regexp.MustCompile(`(?m)^task (\S+) `)

// Check runs each case as a subtest: run with c.Args on a new SQLite file,
// expecting nil when c.State is complete and an *exampleutil.IncompleteError
// naming c.State otherwise; then it checks the output and the stored task
// against the case and tmplYAML's dependencies.
func Check(t *testing.T, run exampleutil.RunFunc, tmplYAML []byte, cases ...Case) {
	t.Helper()
	tmpl, err := tasker.ParseTemplate("template.yaml", tmplYAML)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			out, db, task := runCase(t, run, c, tmpl)
			for _, re := range c.Output {
				if !regexp.MustCompile(re).MatchString(out) {
					t.Errorf("output lacks %q:\n%s", re, out)
				}
			}
			checkSteps(t, task, c.expect())
			CheckOrder(t, task, tmpl)
			if c.Inspect != nil {
				c.Inspect(t, task)
			}
			if c.Subtasks != nil {
				checkSubtasks(t, db, out, task, tmpl, c.Subtasks)
			}
		})
	}
}

// runCase runs the example for c and returns its output, the SQLite file
// and the stored task.
func runCase(t *testing.T, run exampleutil.RunFunc, c Case, tmpl *tasker.Template) (string, string, *tasker.Task) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "tasks.db")
	var out bytes.Buffer
	err := run(t.Context(), append([]string{"-db", db}, c.Args...), &out)
	var inc *exampleutil.IncompleteError
	switch {
	case c.State == tasker.TaskComplete && err != nil:
		t.Fatalf("run: %v\n%s", err, out.String())
	case c.State != tasker.TaskComplete && !errors.As(err, &inc):
		t.Fatalf("run returned %v, want an *IncompleteError\n%s", err, out.String())
	case inc != nil && inc.State != c.State:
		t.Fatalf("run: task ended in %s, want %s", inc.State, c.State)
	}
	m := taskLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output names no task:\n%s", out.String())
	}
	return out.String(), db, Stored(t, db, m[1], tmpl)
}

// Stored reads task id back from the SQLite file db, with tmpls loaded: a
// task of a dynamic template among them is read as Engine.Get shows it,
// with the steps not created and the batch workers' instances.
func Stored(t *testing.T, db, id string, tmpls ...*tasker.Template) *tasker.Task {
	t.Helper()
	var task *tasker.Task
	readStored(t, db, tmpls, func(eng *tasker.Engine) {
		var err error
		if task, err = eng.Get(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	})
	return task
}

// readStored calls read with an engine, not started, on the SQLite file db
// with tmpls loaded, and closes the file after.
func readStored(t *testing.T, db string, tmpls []*tasker.Template, read func(eng *tasker.Engine)) {
	t.Helper()
	st, err := sqlite.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := tasker.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.AddTemplates(tmpls...); err != nil {
		t.Fatal(err)
	}
	read(eng)
}

// checkSteps checks the task's state and each step's state, attempts and
// result against c.
func checkSteps(t *testing.T, task *tasker.Task, c expect) {
	t.Helper()
	if task.State != c.state {
		t.Errorf("stored task %s is %s, want %s", task.ID, task.State, c.state)
	}
	of := task.Namespace + "/" + task.Name
	for _, s := range task.Steps {
		want, listed := c.steps[s.Name]
		if !listed && c.state == tasker.TaskComplete {
			want, listed = tasker.StepComplete, true
		}
		if listed && s.State != want {
			t.Errorf("%s step %s is %s, want %s", of, s.Name, s.State, want)
		}
		if n, ok := c.attempts[s.Name]; ok && s.Attempts != n || !ok && s.Attempts > 1 {
			t.Errorf("%s step %s: %d attempts, want %d", of, s.Name, s.Attempts, max(n, 1))
		}
		if r, ok := c.results[s.Name]; ok && !jsonEqual(s.Result, r) {
			t.Errorf("%s step %s result %s, want %s", of, s.Name, s.Result, r)
		}
	}
	for name := range c.results {
		if task.Step(name) == nil {
			t.Errorf("%s has no step %s", of, name)
		}
	}
}

// CheckOrder checks that every step of task that ran began its first
// attempt only once all its dependencies (in tmpl) had finished. A step
// shown as not_created must not have run, and is no dependency to wait
// for (a deferred convergence waits only for the steps that exist); a
// batch worker template stands for its instances, as a step and as a
// dependency.
func CheckOrder(t testing.TB, task *tasker.Task, tmpl *tasker.Template) {
	t.Helper()
	for _, spec := range tmpl.Steps {
		steps := Instances(task, tmpl, spec.Name)
		if len(steps) == 0 && spec.Type != tasker.StepBatchWorker {
			t.Errorf("task has no step %s", spec.Name)
		}
		for _, s := range steps {
			checkBegan(t, task, tmpl, spec, s)
		}
	}
}

// checkBegan checks that step s, of spec, began after its dependencies.
func checkBegan(t testing.TB, task *tasker.Task, tmpl *tasker.Template, spec *tasker.StepSpec, s *tasker.Step) {
	t.Helper()
	began := firstStart(s)
	switch {
	case s.State == tasker.StepNotCreated && (s.Attempts > 0 || len(s.Transitions) > 0):
		t.Errorf("step %s is not_created but has %d attempts and %d transitions", s.Name, s.Attempts, len(s.Transitions))
	case began.IsZero() && s.Attempts > 0:
		t.Errorf("step %s ran %d times but its trail records no start", s.Name, s.Attempts)
	}
	if began.IsZero() {
		return
	}
	for _, dep := range spec.Dependencies {
		for _, d := range Instances(task, tmpl, dep) {
			if d.State == tasker.StepNotCreated {
				continue
			}
			if d.FinishedAt.IsZero() || began.Before(d.FinishedAt) {
				t.Errorf("step %s began at %s, before its dependency %s finished (at %s)",
					s.Name, began.Format(time.RFC3339Nano), d.Name, d.FinishedAt.Format(time.RFC3339Nano))
			}
		}
	}
}

// Instances returns the steps of task that template step name stands for:
// the step itself, or, for a batch worker template, its instances
// ("{name}_{batch_id}"), in the task's order.
func Instances(task *tasker.Task, tmpl *tasker.Template, name string) []*tasker.Step {
	if spec := tmpl.Step(name); spec == nil || spec.Type != tasker.StepBatchWorker {
		if s := task.Step(name); s != nil {
			return []*tasker.Step{s}
		}
		return nil
	}
	var out []*tasker.Step
	for i := range task.Steps {
		if s := &task.Steps[i]; tmpl.Step(s.Name) == nil && strings.HasPrefix(s.Name, name+"_") {
			out = append(out, s)
		}
	}
	return out
}

// firstStart returns when s's first attempt began, or zero if it never ran.
func firstStart(s *tasker.Step) time.Time {
	for _, tr := range s.Transitions {
		if tr.To == string(tasker.StepInProgress) {
			return tr.At
		}
	}
	return time.Time{}
}

// SameAsTestdata checks that an example's embedded template is the copy of
// testdata/templates/tasker/name it says it is. The test runs in
// examples/NAME, two levels below the repository's root.
func SameAsTestdata(t *testing.T, templateYAML []byte, name string) {
	t.Helper()
	want, err := os.ReadFile(filepath.Join("..", "..", "testdata", "templates", "tasker", name))
	if err != nil || !bytes.Equal(templateYAML, want) {
		t.Errorf("template.yaml differs from testdata/templates/tasker/%s (%v)", name, err)
	}
}
