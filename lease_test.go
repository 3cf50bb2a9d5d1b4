package tasker_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
)

// diamondYAML is the guide's shape: a → (b ‖ c) → d.
const diamondYAML = `
name: diamond
namespace_name: shared
version: "1.0.0"
steps:
  - {name: a, handler: {callable: s.step}}
  - {name: b, dependencies: [a], handler: {callable: s.step}}
  - {name: c, dependencies: [a], handler: {callable: s.step}}
  - {name: d, dependencies: [b, c], handler: {callable: s.step}, retry: {max_attempts: 3, backoff: constant, backoff_base_ms: 1}}
`

// runs counts the attempts of every step, by task and step, and which
// engine made each.
type runs struct {
	mu    sync.Mutex
	count map[string]int    // "task/step" → attempts that returned
	by    map[string]string // "task/step" → the engine of the last
}

func newRuns() *runs { return &runs{count: make(map[string]int), by: make(map[string]string)} }

// handler returns engine's s.step: it records the attempt, then calls
// body, when set.
func (rs *runs) handler(engine string, body func(ctx context.Context, sc *tasker.StepContext) error) tasker.HandlerFunc {
	return func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		if body != nil {
			if err := body(ctx, sc); err != nil {
				return nil, err
			}
		}
		rs.mu.Lock()
		k := sc.TaskID() + "/" + sc.StepName()
		rs.count[k]++
		rs.by[k] = engine
		rs.mu.Unlock()
		return map[string]string{"by": engine}, nil
	}
}

// startShared starts an engine named owner on st, with s.step.
func startShared(t *testing.T, st store.Store, owner string, ttl time.Duration, workers int, h tasker.StepHandler) *tasker.Engine {
	t.Helper()
	cfg := &tasker.Config{Owner: owner, LeaseTTL: ttl, Workers: workers}
	return startEngineWith(t, st, cfg, map[string]tasker.StepHandler{"s.step": h}, mustParse(t, diamondYAML))
}

// TestSharedEnginesSpreadWork: three engines on one shared store, tasks
// submitted to one of them: every task completes, no step runs twice, and
// each engine runs some of the tasks (the one submitting has room for a
// few at a time only).
func TestSharedEnginesSpreadWork(t *testing.T) {
	st := memory.NewShared()
	defer st.Close()
	rs := newRuns()
	slow := func(ctx context.Context, _ *tasker.StepContext) error {
		select { // long enough for the engines' tasks to overlap
		case <-time.After(time.Millisecond):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var engines []*tasker.Engine
	for _, name := range []string{"e1", "e2", "e3"} {
		engines = append(engines, startShared(t, st, name, time.Second, 4, rs.handler(name, slow)))
	}
	const n = 120
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids := make([]string, n)
	for i := range ids {
		id, err := engines[0].Submit(ctx, tasker.SubmitRequest{Namespace: "shared", Name: "diamond"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	split := map[string]int{}
	for _, id := range ids {
		task, err := engines[0].WaitOutcome(ctx, id)
		if err != nil || task.State != tasker.TaskComplete {
			t.Fatalf("task %s: %s, want complete", id, stateOf(task, err))
		}
		rec, err := st.Task(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		split[rec.Owner]++
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for k, c := range rs.count {
		if c != 1 {
			t.Errorf("%s ran %d times, want once", k, c)
		}
	}
	if len(rs.count) != 4*n {
		t.Errorf("%d steps ran, want %d", len(rs.count), 4*n)
	}
	t.Logf("tasks by engine: %v", split)
	for _, name := range []string{"e1", "e2", "e3"} {
		if split[name] == 0 {
			t.Errorf("engine %s ran no task; split %v", name, split)
		}
	}
}

// partition is a shared store that one engine reaches through a network
// that can be cut: while cut, its writes and lease calls fail.
type partition struct {
	*memory.Shared
	cut atomic.Bool
}

var errPartition = errors.New("partition: the store is unreachable")

func (p *partition) down() error {
	if p.cut.Load() {
		return errPartition
	}
	return nil
}

func (p *partition) Apply(ctx context.Context, changes []store.Change) error {
	if err := p.down(); err != nil {
		return err
	}
	return p.Shared.Apply(ctx, changes)
}

func (p *partition) RenewLeases(ctx context.Context, owner string, states []string, ttl time.Duration) ([]store.Lease, error) {
	if err := p.down(); err != nil {
		return nil, err
	}
	return p.Shared.RenewLeases(ctx, owner, states, ttl)
}

func (p *partition) AcquireTasks(ctx context.Context, owner string, states []string, limit int, ttl time.Duration) ([]store.Lease, error) {
	if err := p.down(); err != nil {
		return nil, err
	}
	return p.Shared.AcquireTasks(ctx, owner, states, limit, ttl)
}

func (p *partition) ReleaseTasks(ctx context.Context, leases []store.Lease) error {
	if err := p.down(); err != nil {
		return err
	}
	return p.Shared.ReleaseTasks(ctx, leases)
}

// TestSharedTakeoverFenced: an engine cut off from the store in the middle
// of its tasks loses them to another engine once its leases expire; the
// other resumes each as crash recovery does (the steps that completed are
// not run again; the attempts cut short are retried), and when the first
// engine reaches the store again, nothing it still had in hand is
// recorded: its writes are fenced off (store.ErrLeaseLost).
func TestSharedTakeoverFenced(t *testing.T) {
	st := &partition{Shared: memory.NewShared()}
	defer st.Close()
	rs := newRuns()
	atD, release := make(chan string, 64), make(chan struct{})
	hold := func(ctx context.Context, sc *tasker.StepContext) error {
		if sc.StepName() != "d" {
			return nil
		}
		atD <- sc.TaskID()
		<-release // A's attempts of d return only once B has run d
		return nil
	}
	const ttl = 300 * time.Millisecond
	a := startShared(t, st, "A", ttl, 8, rs.handler("A", hold))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 4
	ids := make([]string, n)
	for i := range ids {
		id, err := a.Submit(ctx, tasker.SubmitRequest{Namespace: "shared", Name: "diamond"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	for range n {
		<-atD // every task is at d, on A
	}
	st.cut.Store(true)
	b := startShared(t, st.Shared, "B", ttl, 8, rs.handler("B", nil))
	for _, id := range ids {
		task, err := b.WaitOutcome(ctx, id)
		if err != nil || task.State != tasker.TaskComplete {
			t.Fatalf("task %s on B: %s, want complete", id, stateOf(task, err))
		}
		if d := task.Step("d"); d.Attempts != 2 || string(d.Result) != `{"by":"B"}` {
			t.Errorf("task %s: d after %d attempts with %s, want B's second", id, d.Attempts, d.Result)
		}
	}
	st.cut.Store(false)
	close(release) // A's attempts of d return now, and are refused
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err) // it returns once A's workers have, their writes done or refused
	}
	checkFenced(t, ctx, st, rs, ids)
}

// checkFenced checks that A's late outcomes of d changed nothing: every
// task is complete, d's result is B's, and a, b and c ran once, on A.
func checkFenced(t *testing.T, ctx context.Context, st store.Store, rs *runs, ids []string) {
	t.Helper()
	for _, id := range ids {
		steps, err := st.Steps(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			want := `{"by":"A"}`
			if s.Name == "d" {
				want = `{"by":"B"}`
			}
			if s.State != string(tasker.StepComplete) || string(s.Result) != want {
				t.Errorf("%s/%s: %s with %s, want complete with %s", id, s.Name, s.State, s.Result, want)
			}
		}
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, id := range ids {
		for _, name := range []string{"a", "b", "c"} {
			if k := id + "/" + name; rs.count[k] != 1 || rs.by[k] != "A" {
				t.Errorf("%s ran %d times, last on %s; want once, on A", k, rs.count[k], rs.by[k])
			}
		}
	}
}
