package tasker_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
)

// wideYAML returns a template 1 → width → 1, every step calling bench.noop.
func wideYAML(width int) string {
	var b strings.Builder
	b.WriteString("name: wide\nnamespace_name: perf\nversion: \"1.0.0\"\nsteps:\n")
	b.WriteString("  - name: start\n    handler: {callable: bench.noop}\n")
	for i := range width {
		fmt.Fprintf(&b, "  - name: s%d\n    handler: {callable: bench.noop}\n    dependencies: [start]\n", i)
	}
	b.WriteString("  - name: finish\n    handler: {callable: bench.noop}\n    dependencies: [")
	for i := range width {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "s%d", i)
	}
	b.WriteString("]\n")
	return b.String()
}

var noop = tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) {
	return nil, nil
})

// counting counts the store calls the engine makes.
type counting struct {
	store.Store
	creates, applies, changes atomic.Int64
}

func (c *counting) CreateTask(ctx context.Context, t store.Task, s []store.Step) (string, bool, error) {
	c.creates.Add(1)
	return c.Store.CreateTask(ctx, t, s)
}

func (c *counting) Apply(ctx context.Context, changes []store.Change) error {
	c.applies.Add(1)
	c.changes.Add(int64(len(changes)))
	return c.Store.Apply(ctx, changes)
}

// TestStoreWritesPerStep guards the write path: a task of n steps costs one
// CreateTask and at most 2n Apply calls, a claim and an outcome per step (the
// task's start rides with the first claim, its end with the last outcome),
// and 2n+2 changes.
func TestStoreWritesPerStep(t *testing.T) {
	const width = 200
	st := &counting{Store: memory.New()}
	eng := startEngine(t, st, map[string]tasker.StepHandler{"bench.noop": noop}, mustParse(t, wideYAML(width)))
	task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "perf", Name: "wide"})
	if task.State != tasker.TaskComplete {
		t.Fatalf("task = %s", task.State)
	}
	steps := int64(width + 2)
	if got := st.creates.Load(); got != 1 {
		t.Errorf("CreateTask called %d times, want 1", got)
	}
	t.Logf("%d steps: %d Apply calls, %d changes", steps, st.applies.Load(), st.changes.Load())
	if got, limit := st.applies.Load(), 2*steps; got > limit {
		t.Errorf("Apply called %d times for %d steps, want at most %d", got, steps, limit)
	}
	if got, limit := st.changes.Load(), 2*steps+2; got > limit {
		t.Errorf("%d changes written for %d steps, want at most %d", got, steps, limit)
	}
}

// TestAllocsPerStep guards the hot path against allocation creep: running a
// wide task on the memory store, Submit and Wait included, allocates at most
// maxAllocsPerStep times per step.
func TestAllocsPerStep(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are meaningful without -short noise only")
	}
	const width, maxAllocsPerStep = 500, 6
	eng := startEngine(t, memory.New(), map[string]tasker.StepHandler{"bench.noop": noop}, mustParse(t, wideYAML(width)))
	ctx := context.Background()
	allocs := testing.AllocsPerRun(5, func() {
		id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "perf", Name: "wide"})
		if err != nil {
			t.Fatal(err)
		}
		if task, err := eng.Wait(ctx, id); err != nil || task.State != tasker.TaskComplete {
			t.Fatalf("task: %s", stateOf(task, err))
		}
	})
	perStep := allocs / (width + 2)
	t.Logf("%.1f allocations per step (%.0f per %d-step task)", perStep, allocs, width+2)
	if perStep > maxAllocsPerStep {
		t.Errorf("%.1f allocations per step, want at most %d", perStep, maxAllocsPerStep)
	}
}
