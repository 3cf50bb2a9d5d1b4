package tasker_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/store/sqlite"
)

const twoSteps = `
name: two_steps
namespace_name: test
version: "1.0.0"
steps:
  - name: first
    handler: {callable: test.first}
    retry: {max_attempts: 3, backoff: constant, backoff_base_ms: 1}
  - name: second
    handler: {callable: test.second}
    dependencies: [first]
    retry: {backoff: constant, backoff_base_ms: 1}
`

func echoStep(name string) tasker.HandlerFunc {
	return func(_ context.Context, sc *tasker.StepContext) (any, error) {
		return map[string]any{"step": name, "attempt": sc.Attempt()}, nil
	}
}

func TestSubmitBeforeStartRunsOnStart(t *testing.T) {
	eng, err := tasker.New(memory.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	eng.Register("test.first", echoStep("first"))
	eng.Register("test.second", echoStep("second"))
	if err := eng.AddTemplates(mustParse(t, twoSteps)); err != nil {
		t.Fatal(err)
	}
	id, err := eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "test", Name: "two_steps"})
	if err != nil {
		t.Fatal(err)
	}
	type waitResult struct {
		task *tasker.Task
		err  error
	}
	waited := make(chan waitResult)
	go func() {
		task, err := eng.Wait(context.Background(), id)
		waited <- waitResult{task, err}
	}()
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer eng.Stop(context.Background())
	got := <-waited
	if got.err != nil || got.task.State != tasker.TaskComplete || step(t, got.task, "second").Attempts != 1 {
		t.Fatalf("Wait before Start: %s, want complete", stateOf(got.task, got.err))
	}
}

// TestRecoverInterruptedStepAfterReopen stops an engine while a step runs,
// reopens the SQLite file in a new engine and checks that the step's cut
// attempt counts, that the completed step does not run again and that the
// task completes.
func TestRecoverInterruptedStepAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasker.db")
	st, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	firstRuns := 0
	running := make(chan struct{})
	eng := startEngineNoCleanup(t, st, map[string]tasker.StepHandler{
		"test.first": tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
			firstRuns++
			return echoStep("first")(ctx, sc)
		}),
		"test.second": tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
			close(running)
			<-ctx.Done()
			return nil, context.Cause(ctx)
		}),
	})
	id, err := eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "test", Name: "two_steps"})
	if err != nil {
		t.Fatal(err)
	}
	<-running
	if err := eng.StopAndCancel(context.Background()); err != nil {
		t.Fatalf("StopAndCancel: %v", err)
	}
	if _, err := eng.Wait(context.Background(), id); !errors.Is(err, tasker.ErrEngineStopped) {
		t.Errorf("Wait on a stopped engine = %v, want ErrEngineStopped", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2 := reopenLeftInProgress(t, path, id)
	defer st2.Close()
	eng2 := startEngineNoCleanup(t, st2, map[string]tasker.StepHandler{
		"test.first":  echoStep("first"),
		"test.second": echoStep("second"),
	})
	defer eng2.Stop(context.Background())
	task, err := eng2.Wait(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	second := step(t, task, "second")
	if task.State != tasker.TaskComplete || second.Attempts != 2 || string(second.Result) != `{"attempt":2,"step":"second"}` {
		t.Fatalf("task %s, second: %d attempts, result %s; want complete on attempt 2", task.State, second.Attempts, second.Result)
	}
	if e := second.LastError; e == nil || e.Code != tasker.CodeInterrupted || e.Attempt != 1 {
		t.Errorf("second's last error = %+v, want the interrupted attempt 1", e)
	}
	if first := step(t, task, "first"); firstRuns != 1 || first.Attempts != 1 {
		t.Errorf("first ran %d times (%d attempts recorded), want once", firstRuns, first.Attempts)
	}
	wantTrail(t, second.Transitions, "second", "pending>in_progress", "in_progress>waiting_for_retry",
		"waiting_for_retry>in_progress", "in_progress>complete")
}

// reopenLeftInProgress opens the SQLite file at path again and checks that
// task id's step second was left in progress by the stop.
func reopenLeftInProgress(t *testing.T, path, id string) store.Store {
	t.Helper()
	st, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	stopped, err := tasker.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if task, err := stopped.Get(context.Background(), id); err != nil || step(t, task, "second").State != tasker.StepInProgress {
		t.Fatalf("after the stop, second = %+v, %v; want left in progress", task, err)
	}
	return st
}

func TestStopReturnsWhenContextExpires(t *testing.T) {
	release := make(chan struct{})
	running := make(chan struct{})
	eng := startEngineNoCleanup(t, memory.New(), map[string]tasker.StepHandler{
		"test.first": tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
			close(running)
			<-release // ignores ctx
			return nil, nil
		}),
		"test.second": echoStep("second"),
	})
	defer close(release)
	if _, err := eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "test", Name: "two_steps"}); err != nil {
		t.Fatal(err)
	}
	<-running
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := eng.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if _, err := eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "test", Name: "two_steps"}); !errors.Is(err, tasker.ErrEngineStopped) {
		t.Errorf("Submit after Stop = %v, want ErrEngineStopped", err)
	}
}

func startEngineNoCleanup(t *testing.T, st store.Store, handlers map[string]tasker.StepHandler) *tasker.Engine {
	t.Helper()
	eng, err := tasker.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range handlers {
		if err := eng.Register(name, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.AddTemplates(mustParse(t, twoSteps)); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return eng
}
