package tasker

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/store/sqlite"
)

// opaqueStore hides every optional ability of the store it wraps.
type opaqueStore struct{ store.Store }

// TestRetentionDefaults: what the zero Retention and its negative limits
// come to on each kind of store.
func TestRetentionDefaults(t *testing.T) {
	sq, err := sqlite.Open(filepath.Join(t.TempDir(), "tasks.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	mem := memory.New()
	for _, tc := range []struct {
		name     string
		st       store.Store
		r        Retention
		none     bool // no cleaner at all
		maxAge   time.Duration
		maxTasks int
	}{
		{name: "memory, defaults", st: mem, maxAge: DefaultRetentionMaxAge, maxTasks: DefaultRetentionMaxTasks},
		{name: "sqlite, defaults", st: sq, maxAge: DefaultRetentionMaxAge},
		{name: "memory, no count limit", st: mem, r: Retention{MaxTasks: -1}, maxAge: DefaultRetentionMaxAge},
		{name: "memory, no age limit", st: mem, r: Retention{MaxAge: -1}, maxTasks: DefaultRetentionMaxTasks},
		{name: "sqlite, a count limit", st: sq, r: Retention{MaxAge: -1, MaxTasks: 5}, maxTasks: 5},
		{name: "sqlite, no limit at all", st: sq, r: Retention{MaxAge: -1}, none: true},
		{name: "disabled", st: mem, r: Retention{Disabled: true, MaxTasks: 5}, none: true},
		{name: "a store that is not a Purger", st: opaqueStore{mem}, none: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := (&Config{Retention: tc.r}).withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			c := newCleaner(tc.st, cfg)
			switch {
			case tc.none && c != nil:
				t.Fatalf("cleaner %+v, want none", c)
			case tc.none:
				return
			case c == nil:
				t.Fatal("no cleaner, want one")
			}
			if c.maxAge != tc.maxAge || c.maxTasks != tc.maxTasks || c.interval != DefaultRetentionInterval ||
				!slices.Equal(c.states, []string{"complete", "cancelled"}) {
				t.Errorf("cleaner: max age %s, max tasks %d, every %s, states %v; want %s, %d, every %s, [complete cancelled]",
					c.maxAge, c.maxTasks, c.interval, c.states, tc.maxAge, tc.maxTasks, DefaultRetentionInterval)
			}
		})
	}
}

// TestEndedTasksLeaveNothingInTheEngine: once parents and the sub-tasks
// they waited for have ended, the engine holds no run, no waiter and no
// timer of theirs, so retention's deletions are the whole story of a
// long-running process's memory.
func TestEndedTasksLeaveNothingInTheEngine(t *testing.T) {
	eng, err := New(memory.New(), &Config{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	eng.Register("t.child", HandlerFunc(func(context.Context, *StepContext) (any, error) { return "ok", nil }))
	eng.Register("t.parent", HandlerFunc(func(ctx context.Context, sc *StepContext) (any, error) {
		child, err := sc.Subtask(ctx, SubmitRequest{Namespace: "t", Name: "child"})
		if err != nil {
			return nil, err
		}
		return child.ID, nil
	}))
	for _, y := range []string{
		"name: parent\nnamespace_name: t\nversion: \"1.0.0\"\nsteps:\n  - {name: p, handler: {callable: t.parent}}\n",
		"name: child\nnamespace_name: t\nversion: \"1.0.0\"\nsteps:\n  - {name: c, handler: {callable: t.child}}\n",
	} {
		tmpl, err := ParseTemplate("t.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.AddTemplates(tmpl); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer eng.Stop(ctx)
	for range 50 {
		id, err := eng.Submit(ctx, SubmitRequest{Namespace: "t", Name: "parent"})
		if err != nil {
			t.Fatal(err)
		}
		if task, err := eng.Wait(ctx, id); err != nil || task.State != TaskComplete {
			t.Fatalf("parent %s: %v, %v; want complete", id, task, err)
		}
	}
	s := eng.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.runs) != 0 || len(s.waiters) != 0 || len(s.timers) != 0 {
		t.Errorf("after every task ended: %d runs, %d waiters, %d timers; want none", len(s.runs), len(s.waiters), len(s.timers))
	}
}
