package tasker

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/gotasker/tasker/store/memory"
)

// TestFinishedTasksAreReleased checks that the engine keeps no in-memory
// state of a task once it ended: no run, no timer.
func TestFinishedTasksAreReleased(t *testing.T) {
	eng, err := New(memory.New(), &Config{Workers: 8})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	var mu sync.Mutex
	h := HandlerFunc(func(_ context.Context, sc *StepContext) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls%7 == 0 && sc.Attempt() == 1 {
			return nil, fmt.Errorf("transient") // retried after a timer
		}
		return calls, nil
	})
	eng.Register("t.h", h)
	tmpl, err := ParseTemplate("t.yaml", []byte(`
name: t
namespace_name: t
version: "1.0.0"
steps:
  - {name: a, handler: {callable: t.h}, retry: {backoff: constant, backoff_base_ms: 1}}
  - {name: b, handler: {callable: t.h}, dependencies: [a], retry: {backoff: constant, backoff_base_ms: 1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	eng.AddTemplates(tmpl)
	ctx := context.Background()
	eng.Start(ctx)
	defer eng.Stop(ctx)
	var ids []string
	for range 300 {
		id, err := eng.Submit(ctx, SubmitRequest{Namespace: "t", Name: "t"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		task, err := eng.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if task.State != TaskComplete {
			t.Fatalf("task %s: %s, want complete", id, task.State)
		}
	}
	s := eng.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.runs) != 0 || len(s.timers) != 0 || s.head != len(s.queue) {
		t.Errorf("after every task ended: %d runs, %d timers, %d queued; want none", len(s.runs), len(s.timers), len(s.queue)-s.head)
	}
}
