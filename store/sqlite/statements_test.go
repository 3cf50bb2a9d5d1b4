package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/gotasker/tasker/store"
)

// diamondSteps is the guide's workflow, a → (b ‖ c) → d → e.
var diamondSteps = []string{"a", "b", "c", "d", "e"}

// diamondWrites returns the writes the engine makes for one task of the
// diamond, in the order it makes them when c's claim comes after a's
// completion: the task with its five steps, then seven Applies of twelve
// changes. Each stage is one element of the result: stage 0 is the
// CreateTask (nil changes), stage k the k-th Apply.
func diamondWrites(id string) (store.Task, []store.Step, [][]store.Change) {
	steps := make([]store.Step, len(diamondSteps))
	for i, name := range diamondSteps {
		steps[i] = store.Step{Name: name, Position: i, State: "pending"}
	}
	task := store.Task{ID: id, Namespace: "bench", Name: "diamond", Version: "1", State: "pending",
		Context: json.RawMessage(`{"order_id":42}`)}
	result := json.RawMessage(`{"ok":true,"amount":12.5}`)
	claim := func(step string) store.Change {
		return store.Change{TaskID: id, Step: step, From: "pending", To: "in_progress", Attempt: 1}
	}
	done := func(step string) store.Change {
		return store.Change{TaskID: id, Step: step, From: "in_progress", FromAttempt: 1, To: "complete",
			Attempt: 1, Result: result}
	}
	return task, steps, [][]store.Change{
		nil,
		{{TaskID: id, From: "pending", To: "in_progress"}, claim("a")},
		{done("a"), claim("b")},
		{claim("c")},
		{done("c")},
		{done("b"), claim("d")},
		{done("d"), claim("e")},
		{done("e"), {TaskID: id, From: "in_progress", To: "complete"}},
	}
}

// runStage makes stage k of diamondWrites for task id.
func runStage(ctx context.Context, s *Store, id string, k int) error {
	task, steps, stages := diamondWrites(id)
	if k == 0 {
		_, _, err := s.CreateTask(ctx, task, steps)
		return err
	}
	return s.Apply(ctx, stages[k])
}

// runDiamond makes every stage of diamondWrites for task id, in order.
func runDiamond(ctx context.Context, s *Store, id string) error {
	task, steps, stages := diamondWrites(id)
	if _, _, err := s.CreateTask(ctx, task, steps); err != nil {
		return err
	}
	for _, changes := range stages[1:] {
		if err := s.Apply(ctx, changes); err != nil {
			return err
		}
	}
	return nil
}

// The statements the write connection runs per completed step of the
// diamond (BEGIN and COMMIT included), at most: with each write in a
// transaction of its own, and with the writes of batchTasks tasks at the
// same stage sharing one. A transaction holds BEGIN, one UPDATE per change,
// one INSERT of all its transitions, a task's INSERT and one of its steps,
// and COMMIT: 37 statements a task alone, 14 a task plus 23 a batch.
const (
	serialStatementsPerStep  = 37.0 / 5
	batchTasks               = 10
	batchedStatementsPerStep = (14.0*batchTasks + 23) / (5 * batchTasks)
)

// TestStatementsPerStep guards the cost of the write path: it counts the
// statements the writer runs for the diamond's writes, with each write in
// a transaction of its own and with the writes of many tasks sharing
// transactions, and fails if a step costs more statements than it does
// now.
func TestStatementsPerStep(t *testing.T) {
	t.Run("serial", func(t *testing.T) {
		s := openGuarded(t)
		ctx := context.Background()
		before := s.w.statements.Load()
		const tasks = 3
		for i := range tasks {
			for k := range 8 {
				if err := runStage(ctx, s, fmt.Sprint("t", i), k); err != nil {
					t.Fatalf("task %d stage %d: %v", i, k, err)
				}
			}
		}
		checkPerStep(t, s.w.statements.Load()-before, tasks, serialStatementsPerStep)
	})
	t.Run("batched", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := openGuarded(t)
			before := s.w.statements.Load()
			for k := range 8 {
				runBatch(t, s, k)
			}
			// Each runBatch holds the writer in a transaction of its own:
			// a BEGIN and a COMMIT that are not the diamonds'.
			ran := s.w.statements.Load() - before - 8*2
			checkPerStep(t, ran, batchTasks, batchedStatementsPerStep)
			s.Close()
		})
	})
}

// openGuarded opens a store, closed when the test ends, whose writer
// never waits for more requests: only batches the test forms share a
// transaction.
func openGuarded(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "tasker.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// runBatch makes stage k of batchTasks tasks in one transaction: it holds
// the writer while their writes queue, waits (in a synctest bubble) until
// every one waits to be taken, and lets the writer take them all at once.
func runBatch(t *testing.T, s *Store, k int) {
	t.Helper()
	var wg sync.WaitGroup
	release := blockWriter(s, &wg)
	commits := s.w.commits.Load()
	for i := range batchTasks {
		wg.Go(func() {
			if err := runStage(context.Background(), s, fmt.Sprint("t", i), k); err != nil {
				t.Errorf("task %d stage %d: %v", i, k, err)
			}
		})
	}
	synctest.Wait()
	close(release)
	wg.Wait()
	if c := s.w.commits.Load() - commits; c != 2 {
		t.Fatalf("stage %d: %d transactions, want 2: the held one and the batch", k, c)
	}
}

// checkPerStep checks that ran, the statements the writer ran for tasks
// diamonds, are at most want per step.
func checkPerStep(t *testing.T, ran int64, tasks int, want float64) {
	t.Helper()
	got := float64(ran) / float64(tasks*len(diamondSteps))
	t.Logf("%.2f statements per step (at most %.2f)", got, want)
	if got > want {
		t.Errorf("the writer ran %.2f statements per completed step, want at most %.2f", got, want)
	}
}
