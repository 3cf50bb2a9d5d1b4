package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/postgres/pgtest"
)

// checkpointOf returns the checkpoint of task id's only step.
func checkpointOf(t *testing.T, s store.Store, id string) string {
	t.Helper()
	steps, err := s.Steps(context.Background(), id)
	if err != nil || len(steps) != 1 {
		t.Fatalf("Steps(%q) = %+v, %v", id, steps, err)
	}
	return string(steps[0].Checkpoint)
}

// Once AcquireTasks has taken a task over, no change fenced by the former
// holder's token lands, even one whose batch was on its way: writers of
// the old holder keep saving checkpoints while the lease runs out, and the
// checkpoint the new holder sees when it has acquired the task is the last
// one ever stored.
func TestNoFencedWriteAfterTakeover(t *testing.T) {
	pool := pgtest.Pool(t)
	for round := range 5 {
		s := open(t, pool)
		ctx := context.Background()
		id := fmt.Sprint("t", round)
		steps := []store.Step{{Name: "a", State: "in_progress", Attempts: 1}}
		_, _, lease, err := s.CreateLeased(ctx, store.Task{ID: id, State: "running"}, steps, "old", 30*time.Millisecond)
		if err != nil {
			t.Fatalf("CreateLeased: %v", err)
		}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					c := store.Change{TaskID: id, Step: "a", From: "in_progress", FromAttempt: 1, To: "in_progress",
						Attempt: 1, Checkpoint: fmt.Appendf(nil, `"%d-%d"`, w, i), Lease: lease.Token}
					err := s.Apply(ctx, []store.Change{c})
					if errors.Is(err, store.ErrLeaseLost) {
						return
					}
					if err != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
				}
			})
		}
		var seen string
		for deadline := time.Now().Add(patience); ; time.Sleep(time.Millisecond) {
			ls, err := s.AcquireTasks(ctx, "new", []string{"running"}, 1, time.Hour)
			if err != nil {
				t.Fatalf("AcquireTasks: %v", err)
			}
			if len(ls) == 1 {
				seen = checkpointOf(t, s, id)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the lease was not taken over within %v", patience)
			}
		}
		wg.Wait()
		if got := checkpointOf(t, s, id); got != seen {
			t.Fatalf("round %d: checkpoint %s stored after the takeover, which saw %s", round, got, seen)
		}
	}
}
