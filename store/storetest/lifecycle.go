package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/gotasker/tasker/store"
)

var lifecycleCases = []testCase{
	{"every call after Close wraps ErrClosed and a second Close returns nil", testClosed},
	{"a call with a done context returns the context's error and writes nothing", testDoneContext},
	{"Close during concurrent calls lets every call return, succeeding or wrapping ErrClosed", testCloseWhileBusy},
}

// calls makes one call of every Store method but Close, by name.
func calls(ctx context.Context, s store.Store) map[string]func() error {
	return map[string]func() error{
		"CreateTask": func() error { _, _, err := s.CreateTask(ctx, sampleTask("t2"), nil); return err },
		"Apply":      func() error { return s.Apply(ctx, []store.Change{claim("t1", "a", 1, at(1))}) },
		"Task":       func() error { _, err := s.Task(ctx, "t1"); return err },
		"Steps":      func() error { _, err := s.Steps(ctx, "t1"); return err },
		"Transitions": func() error {
			_, err := s.Transitions(ctx, "t1")
			return err
		},
		"ListTasks": func() error { _, err := s.ListTasks(ctx, store.Filter{}); return err },
		"Apply with a DeadLetter": func() error {
			return s.Apply(ctx, []store.Change{toError("t1", "pending", "d1", at(1))})
		},
		"DeadLetters": func() error {
			_, err := s.DeadLetters(ctx, store.DeadLetterFilter{})
			return err
		},
	}
}

func testClosed(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, call := range calls(context.Background(), s) {
		if err := call(); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want an error wrapping ErrClosed", name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
}

func testDoneContext(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, call := range calls(ctx, s) {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want an error wrapping context.Canceled", name, err)
		}
	}
	checkSteps(t, getSteps(t, s, "t1"), withTaskID("t1", sampleSteps("a")))
	noDeadLetters(t, s)
	if _, err := s.Task(context.Background(), "t2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Task of a task created with a done context: %v, want ErrNotFound", err)
	}
}

func testCloseWhileBusy(t *testing.T, s store.Store) {
	create(t, s, "t1", "a")
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	started := make(chan struct{}, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			ctx := context.Background()
			for i := 0; ; i++ {
				_, _, err := s.CreateTask(ctx, sampleTask(fmt.Sprintf("t%d-%d", g, i)), sampleSteps("a"))
				if err == nil {
					_, err = s.Steps(ctx, fmt.Sprintf("t%d-%d", g, i))
				}
				if i == 0 {
					started <- struct{}{}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range goroutines {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("call racing Close: %v, want success or an error wrapping ErrClosed", err)
		}
	}
}
