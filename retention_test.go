package tasker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const purgedMsg = "tasker: retention: finished tasks purged"

// purgeCore is a zap core that sends the count of every retention purge
// the engine logs, at debug level, on its channel (dropping counts when
// nobody reads).
type purgeCore struct{ counts chan int }

func (c purgeCore) Enabled(zapcore.Level) bool        { return true }
func (c purgeCore) With([]zapcore.Field) zapcore.Core { return c }
func (c purgeCore) Sync() error                       { return nil }
func (c purgeCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, c)
}

func (c purgeCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if e.Message != purgedMsg {
		return nil
	}
	for _, f := range fields {
		if f.Key == "tasks" {
			select {
			case c.counts <- int(f.Integer):
			default:
			}
		}
	}
	return nil
}

// purgeLogger returns a logger and the channel of the purges it logs.
func purgeLogger() (*zap.Logger, <-chan int) {
	c := purgeCore{counts: make(chan int, 1024)}
	return zap.New(c), c.counts
}

// awaitPurged reads purge counts until they add up to want, and fails if
// they go past it or it takes more than 10 seconds.
func awaitPurged(t *testing.T, counts <-chan int, want int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for got := 0; got < want; {
		select {
		case n := <-counts:
			if got += n; got > want {
				t.Fatalf("retention purged %d tasks, want %d", got, want)
			}
		case <-timeout:
			t.Fatalf("retention purged %d tasks in 10s, want %d", got, want)
		}
	}
}

// retentionYAML has a template of one step of callable test.<name>.
func retentionYAML(name string) string {
	return `
name: ` + name + `
namespace_name: test
version: "1.0.0"
steps:
  - {name: work, handler: {callable: test.` + name + `}, retry: {max_attempts: 1}}
`
}

// retentionWorld is an engine on a store whose handlers succeed (ok),
// fail for good (fail) or block until their context ends or the test does
// (block).
type retentionWorld struct {
	eng     *tasker.Engine
	st      store.Store
	started chan struct{}
}

func newRetentionWorld(t *testing.T, st store.Store, cfg *tasker.Config) *retentionWorld {
	t.Helper()
	w := &retentionWorld{st: st, started: make(chan struct{}, 16)}
	release := make(chan struct{})
	w.eng = startEngineWith(t, st, cfg, map[string]tasker.StepHandler{
		"test.ok": echoStep("ok"),
		"test.fail": tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) {
			return nil, errors.New("no")
		}),
		"test.block": tasker.HandlerFunc(func(ctx context.Context, _ *tasker.StepContext) (any, error) {
			w.started <- struct{}{}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-release:
				return "released", nil
			}
		}),
	}, mustParse(t, retentionYAML("ok")), mustParse(t, retentionYAML("fail")), mustParse(t, retentionYAML("block")))
	t.Cleanup(func() { close(release) }) // before the engine stops
	return w
}

// run submits a task of template name and, unless it blocks, waits for
// its end.
func (w *retentionWorld) run(t *testing.T, name string) string {
	t.Helper()
	id, err := w.eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "test", Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if name == "block" {
		<-w.started
		return id
	}
	if _, err := w.eng.Wait(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	return id
}

// checkKept fails unless Get finds the tasks kept in their states and not
// the tasks gone.
func (w *retentionWorld) checkKept(t *testing.T, kept map[string]tasker.TaskState, gone ...string) {
	t.Helper()
	for id, state := range kept {
		if task, err := w.eng.Get(context.Background(), id); err != nil || task.State != state {
			t.Errorf("task %s: %s, want it kept, %s", id, stateOf(task, err), state)
		}
	}
	for _, id := range gone {
		if task, err := w.eng.Get(context.Background(), id); !errors.Is(err, tasker.ErrTaskNotFound) {
			t.Errorf("task %s: %s, want it purged (ErrTaskNotFound)", id, stateOf(task, err))
		}
	}
}

// TestRetentionDeletesFinishedTasksPastMaxAge: once the clock passes
// MaxAge, the complete and cancelled tasks are deleted, and the task in
// error and the running one are kept.
func TestRetentionDeletesFinishedTasksPastMaxAge(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		clock := &fakeClock{}
		log, purged := purgeLogger()
		w := newRetentionWorld(t, st, &tasker.Config{Workers: 4, Clock: clock.now, Logger: log,
			Retention: tasker.Retention{MaxAge: time.Hour, Interval: time.Millisecond}})
		done := []string{w.run(t, "ok"), w.run(t, "ok")}
		failed := w.run(t, "fail")
		running := w.run(t, "block")
		cancelled := w.run(t, "block")
		if err := w.eng.Cancel(context.Background(), cancelled, tasker.Action{By: "test"}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.eng.Wait(context.Background(), cancelled); err != nil {
			t.Fatal(err)
		}
		kept := map[string]tasker.TaskState{failed: tasker.TaskFailed, running: tasker.TaskInProgress,
			done[0]: tasker.TaskComplete, done[1]: tasker.TaskComplete, cancelled: tasker.TaskCancelled}
		w.checkKept(t, kept) // younger than MaxAge
		clock.advance(time.Hour + time.Minute)
		awaitPurged(t, purged, 3)
		delete(kept, done[0])
		delete(kept, done[1])
		delete(kept, cancelled)
		w.checkKept(t, kept, done[0], done[1], cancelled)
	})
}

// TestRetentionKeepsMaxTasks: with a count limit, only the newest
// finished tasks are kept, whatever their age; a task in error does not
// count.
func TestRetentionKeepsMaxTasks(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		log, purged := purgeLogger()
		w := newRetentionWorld(t, st, &tasker.Config{Workers: 4, Logger: log,
			Retention: tasker.Retention{MaxAge: -1, MaxTasks: 2, Interval: time.Millisecond}})
		var ids []string
		for range 5 {
			ids = append(ids, w.run(t, "ok"))
		}
		failed := w.run(t, "fail")
		awaitPurged(t, purged, 3)
		w.checkKept(t, map[string]tasker.TaskState{ids[3]: tasker.TaskComplete, ids[4]: tasker.TaskComplete,
			failed: tasker.TaskFailed}, ids[:3]...)
		// A key is a key while its task is kept: submitted again, it makes
		// a new task once the first is gone.
		req := tasker.SubmitRequest{Namespace: "test", Name: "ok", IdempotencyKey: "k"}
		first := submitAndWait(t, w.eng, req).ID
		w.run(t, "ok")
		w.run(t, "ok")
		awaitPurged(t, purged, 3) // ids[3], ids[4] and first
		if again := submitAndWait(t, w.eng, req).ID; again == first {
			t.Errorf("the key of a purged task returned it again, %s; want a new task", first)
		}
	})
}

// purgeCounter is a memory store that counts PurgeTasks calls.
type purgeCounter struct {
	*memory.Store
	calls chan struct{}
}

func (p *purgeCounter) PurgeTasks(ctx context.Context, f store.PurgeFilter) (int, error) {
	select {
	case p.calls <- struct{}{}:
	default:
	}
	return p.Store.PurgeTasks(ctx, f)
}

// TestRetentionDisabled: a disabled retention never purges. The staleness
// check, on the same clock every millisecond like the cleaner would be,
// runs many times meanwhile; a cleaner would purge at once at Start.
func TestRetentionDisabled(t *testing.T) {
	st := &purgeCounter{Store: memory.New(), calls: make(chan struct{}, 1)}
	defer st.Close()
	ticks := make(chan struct{}, 1)
	clock := func() time.Time {
		select {
		case ticks <- struct{}{}:
		default:
		}
		return time.Now()
	}
	w := newRetentionWorld(t, st, &tasker.Config{StalenessInterval: time.Millisecond, Clock: clock,
		Retention: tasker.Retention{Disabled: true, MaxTasks: 1, MaxAge: time.Nanosecond, Interval: time.Millisecond}})
	w.run(t, "ok")
	w.run(t, "ok")
	for range 50 {
		<-ticks
	}
	select {
	case <-st.calls:
		t.Fatal("PurgeTasks was called with retention disabled")
	default:
	}
	if got := listedIDs(t, w.eng); len(got) != 2 {
		t.Errorf("tasks %v, want both kept", got)
	}
}

// listedIDs returns the IDs of every task eng lists.
func listedIDs(t *testing.T, eng *tasker.Engine) []string {
	t.Helper()
	tasks, err := eng.List(context.Background(), tasker.TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, task := range tasks {
		ids = append(ids, task.ID)
	}
	return ids
}

// TestRetentionConfig: New refuses a retention it cannot carry out.
func TestRetentionConfig(t *testing.T) {
	for name, r := range map[string]tasker.Retention{
		"a negative interval":       {Interval: -time.Second},
		"an empty list of states":   {States: []tasker.TaskState{}},
		"a state tasks run in":      {States: []tasker.TaskState{tasker.TaskComplete, tasker.TaskInProgress}},
		"a state that is not":       {States: []tasker.TaskState{"done"}},
		"a pending task's state, 1": {States: []tasker.TaskState{tasker.TaskPending}},
	} {
		if _, err := tasker.New(memory.New(), &tasker.Config{Retention: r}); err == nil {
			t.Errorf("New with %s (%+v): no error", name, r)
		}
	}
	for name, r := range map[string]tasker.Retention{
		"tasks in error too":          {States: []tasker.TaskState{tasker.TaskFailed, tasker.TaskComplete}},
		"disabled, whatever the rest": {Disabled: true, Interval: -1, States: []tasker.TaskState{}},
		"no limits":                   {MaxAge: -1, MaxTasks: -1},
	} {
		if _, err := tasker.New(memory.New(), &tasker.Config{Retention: r}); err != nil {
			t.Errorf("New with %s: %v", name, err)
		}
	}
}

// TestRetentionSparesJustFinishedTasks: the count limit does not delete a
// task that finished less than an Interval ago, by the engine's clock, so
// that whoever waits for it reads it first.
func TestRetentionSparesJustFinishedTasks(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		clock := &fakeClock{}
		clock.advance(-time.Hour) // by the engine's clock, every task finishes in an hour
		log, purged := purgeLogger()
		w := newRetentionWorld(t, st, &tasker.Config{Workers: 4, Clock: clock.now, Logger: log,
			Retention: tasker.Retention{MaxAge: -1, MaxTasks: 1, Interval: time.Millisecond}})
		ids := []string{w.run(t, "ok"), w.run(t, "ok"), w.run(t, "ok")}
		// Passes that began before the tasks ended, then three more, at
		// least two of which began after: none purged anything.
		for drained := false; !drained; {
			select {
			case n := <-purged:
				if n != 0 {
					t.Fatalf("a pass purged %d tasks, want none", n)
				}
			default:
				drained = true
			}
		}
		for range 3 {
			if n := <-purged; n != 0 {
				t.Fatalf("a pass purged %d tasks, want none", n)
			}
		}
		w.checkKept(t, map[string]tasker.TaskState{ids[0]: tasker.TaskComplete, ids[1]: tasker.TaskComplete,
			ids[2]: tasker.TaskComplete})
		clock.advance(time.Hour + time.Second)
		awaitPurged(t, purged, 2)
		w.checkKept(t, map[string]tasker.TaskState{ids[2]: tasker.TaskComplete}, ids[:2]...)
	})
}
