package exampletest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gotasker/tasker"
)

// recorder is a testing.TB that records the errors reported to it.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

const chainYAML = `
name: chain
namespace_name: examples
version: "1.0.0"
steps:
  - name: a
    handler: {callable: a}
  - name: b
    handler: {callable: b}
    dependencies: [a]
`

// ran returns a step that started at start and finished at end (offsets
// from t0), with its trail.
func ran(name string, t0 time.Time, start, end time.Duration) tasker.Step {
	return tasker.Step{Name: name, State: tasker.StepComplete, Attempts: 1, FinishedAt: t0.Add(end),
		Transitions: []tasker.Transition{{Step: name, From: "pending", To: "in_progress", At: t0.Add(start)}}}
}

func TestCheckOrder(t *testing.T) {
	tmpl, err := tasker.ParseTemplate("chain.yaml", []byte(chainYAML))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	noTrail := ran("b", t0, 3, 4)
	noTrail.Transitions = nil
	for _, c := range []struct {
		name  string
		steps []tasker.Step
		want  string
	}{
		{"in order", []tasker.Step{ran("a", t0, 0, 2), ran("b", t0, 2, 3)}, ""},
		{"early", []tasker.Step{ran("a", t0, 0, 2), ran("b", t0, 1, 3)}, "step b began at"},
		{"no start recorded", []tasker.Step{ran("a", t0, 0, 2), noTrail}, "records no start"},
		{"dependency unfinished", []tasker.Step{{Name: "a", State: tasker.StepInProgress}, ran("b", t0, 1, 3)}, "before its dependency a finished"},
	} {
		r := &recorder{TB: t}
		CheckOrder(r, &tasker.Task{Steps: c.steps}, tmpl)
		if got := strings.Join(r.errs, "\n"); c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: reported %q, want %q", c.name, got, c.want)
		}
	}
}

const dynamicYAML = `
name: dynamic
namespace_name: examples
version: "1.0.0"
steps:
  - {name: route, type: decision, handler: {callable: x}, dependencies: [split]}
  - {name: left, handler: {callable: x}, dependencies: [route]}
  - {name: right, handler: {callable: x}, dependencies: [route]}
  - {name: join, type: deferred_convergence, handler: {callable: x}, dependencies: [left, right, work]}
  - name: split
    type: batchable
    handler: {callable: x}
    batch_config: {worker_template: work}
  - {name: work, type: batch_worker, handler: {callable: x}, dependencies: [split]}
`

// TestCheckOrderDynamic: a step not created is no dependency to wait for
// and must not have run; a batch worker template stands for its
// instances, as a step and as a dependency.
func TestCheckOrderDynamic(t *testing.T) {
	tmpl, err := tasker.ParseTemplate("dynamic.yaml", []byte(dynamicYAML))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	ranRight := tasker.Step{Name: "right", State: tasker.StepNotCreated, Attempts: 1}
	for _, c := range []struct {
		name  string
		steps []tasker.Step
		want  string
	}{
		{"in order", []tasker.Step{ran("split", t0, 0, 1), ran("route", t0, 1, 2), ran("left", t0, 2, 3),
			{Name: "right", State: tasker.StepNotCreated}, ran("work_001", t0, 1, 2), ran("work_002", t0, 1, 3), ran("join", t0, 3, 4)}, ""},
		{"before an instance", []tasker.Step{ran("split", t0, 0, 1), ran("route", t0, 1, 2), ran("left", t0, 2, 3),
			{Name: "right", State: tasker.StepNotCreated}, ran("work_001", t0, 1, 2), ran("work_002", t0, 1, 5), ran("join", t0, 3, 4)},
			"step join began at"},
		{"instance before its batchable step", []tasker.Step{ran("split", t0, 0, 2), ran("route", t0, 2, 3), ran("left", t0, 3, 4),
			{Name: "right", State: tasker.StepNotCreated}, ran("work_001", t0, 1, 2), ran("join", t0, 4, 5)},
			"step work_001 began at"},
		{"not created but ran", []tasker.Step{ran("split", t0, 0, 1), ran("route", t0, 1, 2), ran("left", t0, 2, 3),
			ranRight, ran("join", t0, 3, 4)}, "step right is not_created but has 1 attempts"},
	} {
		r := &recorder{TB: t}
		CheckOrder(r, &tasker.Task{Steps: c.steps}, tmpl)
		if got := strings.Join(r.errs, "\n"); c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: reported %q, want %q", c.name, got, c.want)
		}
	}
}

// TestCheckWithin: a sub-task must be created and started once its step
// began, and end before the step does.
func TestCheckWithin(t *testing.T) {
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	step := ran("call", t0, 1, 5)
	for _, c := range []struct {
		name  string
		child tasker.Task
		want  string
	}{
		{"within", tasker.Task{ID: "c", CreatedAt: at(1), StartedAt: at(2), FinishedAt: at(5)}, ""},
		{"created before", tasker.Task{ID: "c", CreatedAt: at(0), StartedAt: at(2), FinishedAt: at(4)}, "sub-task c created at"},
		{"never started", tasker.Task{ID: "c", CreatedAt: at(2)}, "sub-task c started at"},
		{"ended after", tasker.Task{ID: "c", CreatedAt: at(2), StartedAt: at(2), FinishedAt: at(6)}, "step call finished at"},
	} {
		r := &recorder{TB: t}
		CheckWithin(r, &step, &c.child)
		if got := strings.Join(r.errs, "\n"); c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: reported %q, want %q", c.name, got, c.want)
		}
	}
}
