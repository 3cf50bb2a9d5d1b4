package tasker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/sqlite"
)

// batchYAML is a batch over the items 0..n-1 of the input: load splits them
// into batches of 10, process_batch sums one, aggregate adds the sums.
func batchYAML(strategy string) string {
	return fmtTemplate(`
name: batch
namespace_name: test
version: "1.0.0"
steps:
  - name: load
    type: batchable
    handler: {callable: t.load}
    batch_config: {worker_template: process_batch, batch_size: 10, parallelism: 3, failure_strategy: %s}
  - name: process_batch
    type: batch_worker
    dependencies: [load]
    handler: {callable: t.work}
    retry: {max_attempts: 2, backoff: constant, backoff_base_ms: 1}
  - name: aggregate
    type: deferred_convergence
    dependencies: [process_batch]
    handler: {callable: t.aggregate}
`, strategy)
}

// batchWorld runs the batch's handlers and records what they did.
type batchWorld struct {
	running, maxRunning atomic.Int32
	fail                string // a batch id whose worker fails for good
	mu                  sync.Mutex
	processed           map[int]int // item → times processed
}

func (w *batchWorld) handlers() map[string]tasker.StepHandler {
	w.processed = make(map[int]int)
	return map[string]tasker.StepHandler{
		"t.load": tasker.HandlerFunc(func(_ context.Context, sc *tasker.StepContext) (any, error) {
			var n int
			if err := sc.Input("items", &n); err != nil {
				return nil, err
			}
			if n == 0 {
				return tasker.NoBatches(), nil
			}
			return tasker.CreateBatches(tasker.CursorRanges(n, 10)), nil
		}),
		"t.work":      tasker.HandlerFunc(w.work),
		"t.aggregate": tasker.HandlerFunc(w.aggregate),
	}
}

func (w *batchWorld) work(_ context.Context, sc *tasker.StepContext) (any, error) {
	if n := w.running.Add(1); n > w.maxRunning.Load() {
		w.maxRunning.Store(n)
	}
	defer w.running.Add(-1)
	c, ok := sc.BatchCursor()
	if !ok {
		return nil, errors.New("no cursor")
	}
	if c.BatchID == w.fail {
		return nil, &tasker.StepError{Message: "bad batch " + c.BatchID, Type: tasker.ErrorPermanent}
	}
	sum := 0
	for i := c.StartCursor; i < c.EndCursor; i++ {
		w.mu.Lock()
		w.processed[i]++
		w.mu.Unlock()
		sum += i
	}
	time.Sleep(time.Millisecond) // let the batches overlap
	return map[string]int{"sum": sum}, nil
}

func (w *batchWorld) aggregate(_ context.Context, sc *tasker.StepContext) (any, error) {
	total := 0
	failed := []string{}
	for _, br := range sc.BatchResults("process_batch") {
		if br.State != tasker.StepComplete {
			failed = append(failed, br.Step)
			continue
		}
		var r struct{ Sum int }
		if err := json.Unmarshal(br.Result, &r); err != nil {
			return nil, err
		}
		total += r.Sum
	}
	return map[string]any{"total": total, "failed": failed}, nil
}

// TestBatchFanOut: a batch of 95 items becomes 10 workers, at most 3 at
// once, and the convergence adds up every worker's result; no batches and
// one batch work too.
func TestBatchFanOut(t *testing.T) {
	for _, tc := range []struct{ items, workers, total int }{{95, 10, 4465}, {0, 0, 0}, {7, 1, 21}} {
		eachStore(t, func(t *testing.T, st store.Store) {
			w := &batchWorld{}
			eng := startEngine(t, st, w.handlers(), mustParse(t, batchYAML("fail_fast")))
			task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "batch", Context: map[string]int{"items": tc.items}})
			if task.State != tasker.TaskComplete {
				t.Fatalf("%d items: %s, want complete", tc.items, stateOf(task, nil))
			}
			var names []string
			for _, s := range task.Steps {
				if s.Name != "load" && s.Name != "aggregate" {
					names = append(names, s.Name)
					checkAfter(t, task, "load", s.Name)
					checkAfter(t, task, s.Name, "aggregate")
				}
			}
			if len(names) != tc.workers || tc.workers > 0 && (names[0] != "process_batch_001" || names[len(names)-1] != fmt.Sprintf("process_batch_%03d", tc.workers)) {
				t.Errorf("workers %v, want %d named process_batch_001…", names, tc.workers)
			}
			if got := string(step(t, task, "aggregate").Result); got != fmt.Sprintf(`{"failed":[],"total":%d}`, tc.total) {
				t.Errorf("aggregate = %s, want total %d", got, tc.total)
			}
			if m := w.maxRunning.Load(); m > 3 {
				t.Errorf("%d workers ran at once, over the parallelism of 3", m)
			}
		})
	}
}

// TestBatchFailureStrategies: fail_fast fails the task at the failed
// worker; continue_on_failure lets the others and the convergence run,
// which sees the failure, and then fails the task; isolate completes it.
func TestBatchFailureStrategies(t *testing.T) {
	for _, tc := range []struct {
		strategy   string
		task       tasker.TaskState
		aggregated bool
	}{
		{"fail_fast", tasker.TaskFailed, false},
		{"continue_on_failure", tasker.TaskFailed, true},
		{"isolate", tasker.TaskComplete, true},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			w := &batchWorld{fail: "002"}
			eng := startEngine(t, newMemory(t), w.handlers(), mustParse(t, batchYAML(tc.strategy)))
			task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "batch", Context: map[string]int{"items": 50}})
			if task.State != tc.task {
				t.Fatalf("task: %s, want %s", stateOf(task, nil), tc.task)
			}
			if s := step(t, task, "process_batch_002"); s.State != tasker.StepFailed || s.Attempts != 1 {
				t.Errorf("process_batch_002: %s after %d attempts, want error after 1", s.State, s.Attempts)
			}
			agg := step(t, task, "aggregate")
			if !tc.aggregated {
				if agg.State == tasker.StepComplete {
					t.Errorf("aggregate ran under fail_fast")
				}
				return
			}
			if got := string(agg.Result); agg.State != tasker.StepComplete || got != `{"failed":["process_batch_002"],"total":1080}` {
				t.Errorf("aggregate: %s %s, want it to see process_batch_002 failed and add the other four", agg.State, got)
			}
		})
	}
}

// checkpointing processes its batch one item at a time, saving a
// checkpoint after each; its first attempt fails after failAfter items.
type checkpointing struct {
	failAfter int
	attempts  atomic.Int32
	mu        sync.Mutex
	processed map[int]int
	block     chan struct{} // when set, the first attempt blocks here after failAfter items
}

func (c *checkpointing) work(ctx context.Context, sc *tasker.StepContext) (any, error) {
	c.attempts.Add(1)
	cur, _ := sc.BatchCursor()
	var cp struct{ Next, Sum int }
	cp.Next = cur.StartCursor
	if _, err := sc.Checkpoint(&cp); err != nil {
		return nil, err
	}
	for i := cp.Next; i < cur.EndCursor; i++ {
		if i-cur.StartCursor == c.failAfter && sc.Attempt() == 1 && cur.BatchID == "001" {
			if c.block != nil {
				c.block <- struct{}{}
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return nil, errors.New("connection reset")
		}
		c.mu.Lock()
		c.processed[i]++
		c.mu.Unlock()
		cp.Next, cp.Sum = i+1, cp.Sum+i
		if err := sc.SaveCheckpoint(cp); err != nil {
			return nil, err
		}
	}
	return map[string]int{"sum": cp.Sum}, nil
}

func checkpointHandlers(c *checkpointing) map[string]tasker.StepHandler {
	h := (&batchWorld{}).handlers()
	h["t.work"] = tasker.HandlerFunc(c.work)
	c.processed = make(map[int]int)
	return h
}

// TestCheckpointResume: a worker that fails after saving checkpoints is
// retried from its last one: no item is processed twice, and the
// checkpoints are in the step's audit trail.
func TestCheckpointResume(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		c := &checkpointing{failAfter: 5}
		eng := startEngine(t, st, checkpointHandlers(c), mustParse(t, batchYAML("fail_fast")))
		task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "batch", Context: map[string]int{"items": 20}})
		if task.State != tasker.TaskComplete {
			t.Fatalf("task: %s", stateOf(task, nil))
		}
		for i := range 20 {
			if c.processed[i] != 1 {
				t.Errorf("item %d processed %d times, want once", i, c.processed[i])
			}
		}
		if got := string(step(t, task, "aggregate").Result); got != `{"failed":[],"total":190}` {
			t.Errorf("aggregate = %s", got)
		}
		s := step(t, task, "process_batch_001")
		saves := 0
		for _, tr := range s.Transitions {
			if tr.From == "in_progress" && tr.To == "in_progress" && tr.Reason == "checkpoint" {
				saves++
			}
		}
		if s.Attempts != 2 || saves != 10 {
			t.Errorf("process_batch_001: %d attempts, %d checkpoints in its trail; want 2 and 10", s.Attempts, saves)
		}
	})
}

// TestCheckpointSurvivesRestart: a worker cut short by a stop resumes on a
// new engine from its last checkpoint.
func TestCheckpointSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasker.db")
	st, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &checkpointing{failAfter: 4, block: make(chan struct{})}
	first := startEngineNoCleanupWith(t, st, checkpointHandlers(c), batchYAML("fail_fast"))
	id, err := first.Submit(context.Background(), tasker.SubmitRequest{Namespace: "test", Name: "batch", Context: map[string]int{"items": 10}})
	if err != nil {
		t.Fatal(err)
	}
	<-c.block
	if err := first.StopAndCancel(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if st, err = sqlite.Open(path, nil); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	processed := c.processed
	c.block = nil
	handlers := checkpointHandlers(c) // a new count, started from the first engine's
	for i, n := range processed {
		c.processed[i] = n
	}
	second := startEngine(t, st, handlers, mustParse(t, batchYAML("fail_fast")))
	task, err := second.Wait(context.Background(), id)
	if err != nil || task.State != tasker.TaskComplete {
		t.Fatalf("after restart: %s", stateOf(task, err))
	}
	for i := range 10 {
		if c.processed[i] != 1 {
			t.Errorf("item %d processed %d times, want once", i, c.processed[i])
		}
	}
}

// TestCheckpointSurvivesRetry: a worker that failed for good after saving
// checkpoints resumes from the last one when an operator retries the task.
func TestCheckpointSurvivesRetry(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		c := &checkpointing{failAfter: 5}
		h := checkpointHandlers(c)
		inner := h["t.work"]
		var failed atomic.Bool
		h["t.work"] = tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
			if cur, _ := sc.BatchCursor(); cur.BatchID == "001" && failed.CompareAndSwap(false, true) {
				// Process five items, checkpointing each, then fail for good.
				for i := cur.StartCursor; i < cur.StartCursor+5; i++ {
					c.mu.Lock()
					c.processed[i]++
					c.mu.Unlock()
					if err := sc.SaveCheckpoint(struct{ Next, Sum int }{i + 1, (i + 1) * i / 2}); err != nil {
						return nil, err
					}
				}
				return nil, &tasker.StepError{Message: "disk gone", Type: tasker.ErrorPermanent}
			}
			return inner.Call(ctx, sc)
		})
		eng := startEngine(t, st, h, mustParse(t, batchYAML("fail_fast")))
		ctx := context.Background()
		task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "batch", Context: map[string]int{"items": 20}})
		if task.State != tasker.TaskFailed {
			t.Fatalf("task: %s, want error", stateOf(task, nil))
		}
		if err := eng.Retry(ctx, task.ID, tasker.Action{By: "ops"}); err != nil {
			t.Fatal(err)
		}
		if task, err := eng.Wait(ctx, task.ID); err != nil || task.State != tasker.TaskComplete {
			t.Fatalf("after Retry: %s", stateOf(task, err))
		}
		for i := range 20 {
			if c.processed[i] != 1 {
				t.Errorf("item %d processed %d times, want once", i, c.processed[i])
			}
		}
	})
}
