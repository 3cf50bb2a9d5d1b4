package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/gotasker/tasker/store"
)

var concurrencyCases = []testCase{
	{"concurrent identical claims: exactly one succeeds, the others wrap ErrConflict", testConcurrentClaims},
	{"concurrent Applies that fail after a change of their own applied leave nothing behind", testConcurrentPartialFailures},
	{"concurrent CreateTask and Apply from many goroutines all succeed", testConcurrentWriters},
	{"concurrent CreateTask with one idempotency key creates one task", testConcurrentKey},
}

const goroutines = 16

// parallel runs fn(0) … fn(n-1) in goroutines released together, and
// returns their errors.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func testConcurrentClaims(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	errs := parallel(goroutines, func(i int) error {
		c := claim("t1", "a", 1, at(i))
		c.By = fmt.Sprint("worker-", i)
		return s.Apply(context.Background(), []store.Change{c})
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("claims %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("claim %d: %v, want an error wrapping ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no claim succeeded")
	}
	c := claim("t1", "a", 1, at(winner))
	c.By = fmt.Sprint("worker-", winner)
	checkTransitions(t, getTransitions(t, s, "t1"), transitionsOf(c))
	if st := getSteps(t, s, "t1")[0]; st.State != "in_progress" || st.Attempts != 1 {
		t.Errorf("claimed step is %q attempt %d, want in_progress attempt 1", st.State, st.Attempts)
	}
}

func testConcurrentWriters(t *testing.T, s store.Store) {
	const perGoroutine = 8
	errs := parallel(goroutines, func(g int) error {
		ctx := context.Background()
		for i := range perGoroutine {
			id, _, err := s.CreateTask(ctx, sampleTask(fmt.Sprintf("t%d-%d", g, i)), sampleSteps("a", "b"))
			if err != nil {
				return fmt.Errorf("CreateTask: %w", err)
			}
			if err := s.Apply(ctx, []store.Change{claim(id, "a", 1, at(1)), claim(id, "b", 1, at(1))}); err != nil {
				return fmt.Errorf("Apply claims: %w", err)
			}
			if err := s.Apply(ctx, []store.Change{complete(id, "a", 1, `1`, at(2))}); err != nil {
				return fmt.Errorf("Apply complete a: %w", err)
			}
			if err := s.Apply(ctx, []store.Change{complete(id, "b", 1, `2`, at(2))}); err != nil {
				return fmt.Errorf("Apply complete b: %w", err)
			}
		}
		return nil
	})
	for g, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", g, err)
		}
	}
	if ids := listIDs(t, s, store.Filter{}); len(ids) != goroutines*perGoroutine {
		t.Errorf("ListTasks returned %d tasks, want %d", len(ids), goroutines*perGoroutine)
	}
	for _, st := range getSteps(t, s, "t3-5") {
		if st.State != "completed" {
			t.Errorf("step %s is %q, want completed", st.Name, st.State)
		}
	}
}

func testConcurrentKey(t *testing.T, s store.Store) {
	ids := make([]string, goroutines)
	createdBy := make([]bool, goroutines)
	errs := parallel(goroutines, func(i int) error {
		task := sampleTask(fmt.Sprint("t", i))
		task.IdempotencyKey = "same"
		var err error
		ids[i], createdBy[i], err = s.CreateTask(context.Background(), task, sampleSteps("a"))
		return err
	})
	created := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("CreateTask %d: %v", i, err)
		}
		if ids[i] != ids[0] {
			t.Errorf("CreateTask %d returned %q, CreateTask 0 %q", i, ids[i], ids[0])
		}
		if createdBy[i] {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d calls reported created, want 1", created)
	}
	if got := listIDs(t, s, store.Filter{}); len(got) != 1 {
		t.Errorf("ListTasks = %v, want one task", got)
	}
}

func testConcurrentPartialFailures(t *testing.T, s store.Store) {
	names := make([]string, goroutines)
	for i := range names {
		names[i] = fmt.Sprint("own-", i)
	}
	create(t, s, "t1", append(names, "shared")...)
	errs := parallel(goroutines, func(i int) error {
		return s.Apply(context.Background(), []store.Change{
			claim("t1", names[i], 1, at(i)), claim("t1", "shared", 1, at(i)),
		})
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("Applies %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("Apply %d: %v, want an error wrapping ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no Apply succeeded")
	}
	for _, st := range getSteps(t, s, "t1") {
		claimed := st.Name == "shared" || st.Name == names[winner]
		if want := map[bool]string{true: "in_progress", false: "pending"}[claimed]; st.State != want {
			t.Errorf("step %s is %q, want %q", st.Name, st.State, want)
		}
	}
	checkTransitions(t, getTransitions(t, s, "t1"),
		transitionsOf(claim("t1", names[winner], 1, at(winner)), claim("t1", "shared", 1, at(winner))))
}
