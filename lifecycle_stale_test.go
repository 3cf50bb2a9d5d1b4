package tasker_test

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// fakeClock is a clock a test moves: real time plus an offset.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// logSignal returns a logger that signals on the returned channel each time
// it logs msg.
func logSignal(msg string) (*zap.Logger, <-chan struct{}) {
	ch := make(chan struct{}, 16)
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.WarnLevel)
	return zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == msg {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		return nil
	})), ch
}

// staleYAML is a one-step template whose step may be in process a minute.
func staleYAML(lifecycle string) string {
	return `
name: stale
namespace_name: test
version: "1.0.0"
lifecycle: {` + lifecycle + `}
steps:
  - {name: work, handler: {callable: test.work}, retry: {max_attempts: 1}}
`
}

// staleEngine starts an engine on st whose staleness check runs every
// millisecond on clock, with test.work blocking until released or
// cancelled, and submits one task. It returns the task's ID.
func staleEngine(t *testing.T, st store.Store, lifecycle string, clock *fakeClock, log *zap.Logger, release <-chan struct{}) (*tasker.Engine, string) {
	t.Helper()
	started := make(chan struct{}, 1)
	eng, err := tasker.New(st, &tasker.Config{StalenessInterval: time.Millisecond, Clock: clock.now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	registerAll(t, eng, map[string]tasker.StepHandler{"test.work": tasker.HandlerFunc(func(ctx context.Context, _ *tasker.StepContext) (any, error) {
		started <- struct{}{}
		select {
		case <-release:
			return "done", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})})
	if err := eng.AddTemplates(mustParse(t, staleYAML(lifecycle))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Stop(ctx) })
	id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "test", Name: "stale"})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	return eng, id
}

// TestStalenessActions: a task past a lifecycle threshold, on the engine's
// clock, is acted on: error ends it (STALE), dlq ends it and lists it as a
// dead letter, none only reports it.
func TestStalenessActions(t *testing.T) {
	for _, tc := range []struct {
		name, lifecycle string
		deadLetter      bool
	}{
		{"error", "max_steps_in_process_minutes: 1, staleness_action: error", false},
		{"dlq", "max_steps_in_process_minutes: 1, staleness_action: dlq", true},
		{"default is dlq", "max_steps_in_process_minutes: 1", true},
		{"timeout fails", "max_duration_minutes: 1, staleness_action: none, auto_fail_on_timeout: true", false},
		{"timeout dead-letters", "max_duration_minutes: 1, staleness_action: error, auto_dlq_on_timeout: true", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, st store.Store) {
				clock := &fakeClock{}
				eng, id := staleEngine(t, st, tc.lifecycle, clock, nil, nil)
				clock.advance(2 * time.Minute)
				task, err := eng.Wait(context.Background(), id)
				if err != nil || task.State != tasker.TaskFailed {
					t.Fatalf("task: %s, want error", stateOf(task, err))
				}
				if f := step(t, task, "work").LastError; f == nil || f.Code != tasker.CodeStale {
					t.Errorf("work's failure = %+v, want code STALE", f)
				}
				if last := task.Transitions[len(task.Transitions)-1]; !strings.HasPrefix(last.Reason, tasker.CodeStale+": ") {
					t.Errorf("task's end = %+v, want a STALE reason", last)
				}
				dls, err := eng.DeadLetters(context.Background(), tasker.DeadLetterFilter{TaskID: id})
				if err != nil {
					t.Fatal(err)
				}
				if tc.deadLetter != (len(dls) == 1) || len(dls) > 1 {
					t.Fatalf("dead letters %+v, want one: %v", dls, tc.deadLetter)
				}
				if tc.deadLetter && (dls[0].Reason != tasker.DeadLetterStaleness || dls[0].Status != "pending") {
					t.Errorf("dead letter %+v, want a pending staleness entry", dls[0])
				}
			})
		})
	}
}

// TestStalenessNoneOnlyReports: with staleness_action none the stale task is
// logged and goes on to complete.
func TestStalenessNoneOnlyReports(t *testing.T) {
	clock := &fakeClock{}
	log, stale := logSignal("tasker: task is stale")
	release := make(chan struct{})
	eng, id := staleEngine(t, newMemory(t), "max_steps_in_process_minutes: 1, staleness_action: none", clock, log, release)
	clock.advance(2 * time.Minute)
	select {
	case <-stale:
	case <-time.After(10 * time.Second):
		t.Fatal("the stale task was not reported within 10s")
	}
	close(release)
	task, err := eng.Wait(context.Background(), id)
	if err != nil || task.State != tasker.TaskComplete {
		t.Fatalf("task: %s, want complete", stateOf(task, err))
	}
}

// TestDeadLetterOnExhaustedRetries: a task that ends in error because a step
// ran out of attempts is dead-lettered; Retry resolves the entry, naming who.
func TestDeadLetterOnExhaustedRetries(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		var calls atomic.Int32
		eng := startEngine(t, st, map[string]tasker.StepHandler{
			"test.first":  countCalls(flakyUntil(3), &calls),
			"test.second": echoStep("second"),
		}, mustParse(t, twoSteps))
		ctx := context.Background()
		task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "two_steps"})
		if task.State != tasker.TaskFailed {
			t.Fatalf("task = %s, want error", task.State)
		}
		dls, err := eng.DeadLetters(ctx, tasker.DeadLetterFilter{Status: "pending"})
		if err != nil || len(dls) != 1 || dls[0].TaskID != task.ID || dls[0].Reason != tasker.DeadLetterRetriesExhausted {
			t.Fatalf("pending dead letters = %+v, %v; want one retries_exhausted for %s", dls, err, task.ID)
		}
		if !strings.Contains(dls[0].Message, "first failed after 3 attempts") {
			t.Errorf("message %q", dls[0].Message)
		}
		if err := eng.Retry(ctx, task.ID, tasker.Action{By: "ops:alice", Reason: "gateway back"}); err != nil {
			t.Fatal(err)
		}
		if done, err := eng.Wait(ctx, task.ID); err != nil || done.State != tasker.TaskComplete {
			t.Fatalf("after Retry: %s", stateOf(done, err))
		}
		dls, err = eng.DeadLetters(ctx, tasker.DeadLetterFilter{TaskID: task.ID})
		if err != nil || len(dls) != 1 {
			t.Fatalf("dead letters = %+v, %v", dls, err)
		}
		if d := dls[0]; d.Status != "resolved" || d.ResolvedBy != "ops:alice" || d.Resolution != "gateway back" || d.ResolvedAt.IsZero() {
			t.Errorf("entry after Retry = %+v, want resolved by ops:alice", d)
		}
	})
}

// flakyUntil fails with a transient error until its n-th call.
func flakyUntil(n int32) tasker.HandlerFunc {
	var calls atomic.Int32
	return func(_ context.Context, sc *tasker.StepContext) (any, error) {
		if calls.Add(1) < n+1 {
			return nil, io.ErrUnexpectedEOF
		}
		return "ok", nil
	}
}
