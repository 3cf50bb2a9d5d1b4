package tasker_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/memory"
)

const eventsChainYAML = `
name: chain
namespace_name: ev
version: "1.2.0"
steps:
  - {name: a, handler: {callable: ev.step}, retry: {max_attempts: 2, backoff: constant, backoff_base_ms: 1, max_backoff_ms: 1}}
  - {name: b, handler: {callable: ev.step}, dependencies: [a]}
  - {name: c, handler: {callable: ev.step}, dependencies: [b]}
`

// eventsUntil receives the events of task id from sub until one of kind,
// and returns them all; it fails the test when none comes within 10 s.
func eventsUntil(t *testing.T, sub *tasker.Subscription, id string, kind tasker.EventKind) []tasker.Event {
	t.Helper()
	var got []tasker.Event
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				t.Fatalf("subscription closed; got %v", briefs(got))
			}
			if ev.TaskID != id {
				continue
			}
			got = append(got, ev)
			if ev.Kind == kind {
				return got
			}
		case <-timeout:
			t.Fatalf("no %s within 10s; got %v", kind, briefs(got))
		}
	}
}

// receive returns the next event of sub, or false once it is closed; it
// fails the test when neither happens within 10 s.
func receive(t *testing.T, sub *tasker.Subscription) (tasker.Event, bool) {
	t.Helper()
	select {
	case ev, ok := <-sub.C():
		return ev, ok
	case <-time.After(10 * time.Second):
		t.Fatal("no event and no close within 10s")
		return tasker.Event{}, false
	}
}

// briefs describes events as "kind step/attempt", for comparisons.
func briefs(evs []tasker.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = string(ev.Kind)
		if ev.Step != "" {
			out[i] += fmt.Sprintf(" %s/%d", ev.Step, ev.Attempt)
		}
	}
	return out
}

func wantBriefs(t *testing.T, got []tasker.Event, want ...string) {
	t.Helper()
	if b := briefs(got); !slices.Equal(b, want) {
		t.Fatalf("events:\n  %s\nwant:\n  %s", strings.Join(b, "\n  "), strings.Join(want, "\n  "))
	}
}

// startChain starts an engine running eventsChainYAML with step as every step's
// handler, subscribed before anything is submitted.
func startChain(t *testing.T, step tasker.HandlerFunc) (*tasker.Engine, *tasker.Subscription) {
	eng := startEngine(t, memory.New(), map[string]tasker.StepHandler{"ev.step": step}, mustParse(t, eventsChainYAML))
	sub := eng.Subscribe(0)
	t.Cleanup(sub.Close)
	return eng, sub
}

func submitID(t *testing.T, eng *tasker.Engine, req tasker.SubmitRequest) string {
	t.Helper()
	id, err := eng.Submit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestEventsHappyPath: a three-step chain's events come in order, each
// with its task, template, step and attempt, at the times the audit trail
// records, with the attempts' and the task's durations.
func TestEventsHappyPath(t *testing.T) {
	eng, sub := startChain(t, echoStep("any"))
	id := submitID(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "chain", Initiator: "api:test", Reason: "because"})
	got := eventsUntil(t, sub, id, tasker.EventTaskCompleted)
	wantBriefs(t, got, "task_submitted", "task_started", "step_started a/1", "step_completed a/1",
		"step_started b/1", "step_completed b/1", "step_started c/1", "step_completed c/1", "task_completed")
	task, err := eng.Wait(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if s := got[0]; s.By != "api:test" || s.Reason != "because" || !s.At.Equal(task.CreatedAt) {
		t.Errorf("submitted = %+v; want By api:test, Reason because, At the task's creation %s", s, task.CreatedAt)
	}
	var trail []tasker.Transition // the audit trail's moves, less the steps' creation at submission
	for _, tr := range task.Trail() {
		if tr.From != "" {
			trail = append(trail, tr)
		}
	}
	if len(trail) != len(got)-1 {
		t.Fatalf("%d transitions after submission, %d events after it", len(trail), len(got)-1)
	}
	for k, ev := range got[1:] {
		if tr := trail[k]; ev.Step != tr.Step || !ev.At.Equal(tr.At) || ev.Attempt != tr.Attempt {
			t.Errorf("event %d = %s at %s; transition %+v", k+1, briefs(got[k+1:k+2]), ev.At, tr)
		}
	}
	for k, ev := range got {
		if ev.Namespace != "ev" || ev.Name != "chain" || ev.Version != "1.2.0" || ev.Error != nil || ev.Lost != 0 {
			t.Errorf("event %d = %+v: want template ev/chain@1.2.0, no error, none lost", k, ev)
		}
		switch ev.Kind {
		case tasker.EventStepCompleted:
			if start := got[k-1]; ev.Duration <= 0 || ev.Duration != ev.At.Sub(start.At) {
				t.Errorf("%s: Duration %s, want the time since its start, %s", ev.Step, ev.Duration, ev.At.Sub(start.At))
			}
		case tasker.EventTaskCompleted:
			if ev.Duration != ev.At.Sub(got[0].At) {
				t.Errorf("task Duration %s, want the time since submission, %s", ev.Duration, ev.At.Sub(got[0].At))
			}
		default:
			if ev.Duration != 0 {
				t.Errorf("%s has Duration %s, want 0", briefs(got[k:k+1]), ev.Duration)
			}
		}
	}
}

// TestEventsRetry: a retryable failure is a step_retrying with its error
// and when the next attempt is due, then the next attempt's events.
func TestEventsRetry(t *testing.T) {
	eng, sub := startChain(t, func(_ context.Context, sc *tasker.StepContext) (any, error) {
		if sc.StepName() == "a" && sc.Attempt() == 1 {
			return nil, &tasker.StepError{Message: "try again", Code: "BUSY", Retryable: true}
		}
		return "ok", nil
	})
	id := submitID(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "chain"})
	got := eventsUntil(t, sub, id, tasker.EventTaskCompleted)
	wantBriefs(t, got, "task_submitted", "task_started", "step_started a/1", "step_retrying a/1",
		"step_started a/2", "step_completed a/2", "step_started b/1", "step_completed b/1",
		"step_started c/1", "step_completed c/1", "task_completed")
	retry := got[3]
	if e := retry.Error; e == nil || e.Code != "BUSY" || e.Message != "try again" || !e.Retryable || e.Attempt != 1 {
		t.Errorf("retrying's Error = %+v, want the attempt's BUSY failure", e)
	}
	if retry.RetryAt.Before(retry.At) || retry.RetryAt.After(retry.At.Add(time.Millisecond)) {
		t.Errorf("RetryAt %s, want within the 1 ms backoff after %s", retry.RetryAt, retry.At)
	}
	if retry.Duration != retry.At.Sub(got[2].At) {
		t.Errorf("retrying's Duration %s, want the attempt's %s", retry.Duration, retry.At.Sub(got[2].At))
	}
	if done := got[5]; done.Error != nil {
		t.Errorf("a success carries the earlier failure: %+v", done.Error)
	}
}

// TestEventsFailureAndRetry: a step out of attempts is a step_failed,
// then the task's failure and its dead-letter entry; an operator's Retry
// resumes it, and the failed step starts over.
func TestEventsFailureAndRetry(t *testing.T) {
	var fixed atomic.Bool
	eng, sub := startChain(t, func(_ context.Context, sc *tasker.StepContext) (any, error) {
		if sc.StepName() == "a" && !fixed.Load() {
			return nil, &tasker.StepError{Message: "down", Code: "DOWN", Retryable: true}
		}
		return "ok", nil
	})
	id := submitID(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "chain"})
	got := eventsUntil(t, sub, id, tasker.EventTaskFailed)
	got = append(got, eventsUntil(t, sub, id, tasker.EventDeadLettered)...)
	wantBriefs(t, got, "task_submitted", "task_started", "step_started a/1", "step_retrying a/1",
		"step_started a/2", "step_failed a/2", "task_failed", "dead_lettered")
	if e := got[5].Error; e == nil || e.Code != "DOWN" || e.Attempt != 2 {
		t.Errorf("step_failed's Error = %+v, want attempt 2's DOWN", e)
	}
	if end := got[6]; end.Duration != end.At.Sub(got[0].At) || end.Error != nil {
		t.Errorf("task_failed = %+v, want the time since submission and no error", end)
	}
	if dl := got[7]; dl.Reason != tasker.DeadLetterRetriesExhausted || !strings.Contains(dl.Message, "step a failed after 2 attempts") ||
		!dl.At.Equal(got[6].At) {
		t.Errorf("dead_lettered = %+v, want retries_exhausted for step a, with the task's end", dl)
	}

	fixed.Store(true)
	if err := eng.Retry(context.Background(), id, tasker.Action{By: "ops:bob", Reason: "fixed"}); err != nil {
		t.Fatal(err)
	}
	got = eventsUntil(t, sub, id, tasker.EventTaskCompleted)
	wantBriefs(t, got, "task_resumed", "step_started a/1", "step_completed a/1", "step_started b/1",
		"step_completed b/1", "step_started c/1", "step_completed c/1", "task_completed")
	if r := got[0]; r.By != "ops:bob" || r.Reason != "fixed" {
		t.Errorf("task_resumed = %+v, want the operator's action", r)
	}
}

// TestEventsCancel: cancelling a task is the running attempt's
// step_cancelled, then the steps that never ran, then the task's, with the
// operator's action.
func TestEventsCancel(t *testing.T) {
	eng, sub := startChain(t, func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		<-ctx.Done()
		return nil, context.Cause(ctx)
	})
	id := submitID(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "chain"})
	got := eventsUntil(t, sub, id, tasker.EventStepStarted)
	by := tasker.Action{By: "ops:alice", Reason: "not needed"}
	if err := eng.Cancel(context.Background(), id, by); err != nil {
		t.Fatal(err)
	}
	got = append(got, eventsUntil(t, sub, id, tasker.EventTaskCancelled)...)
	wantBriefs(t, got, "task_submitted", "task_started", "step_started a/1", "step_cancelled a/1",
		"step_cancelled b/0", "step_cancelled c/0", "task_cancelled")
	if a := got[3]; a.Duration <= 0 || a.Duration != a.At.Sub(got[2].At) || a.Error != nil {
		t.Errorf("a's step_cancelled = %+v, want its attempt's duration and no error", a)
	}
	for _, ev := range got[4:] {
		if ev.By != by.By || ev.Reason != by.Reason {
			t.Errorf("%s: By %q Reason %q, want the operator's", ev.Kind, ev.By, ev.Reason)
		}
	}
}

// TestEventsDecision: a decision's outcome creates the steps it chose,
// each a step_created before it starts.
func TestEventsDecision(t *testing.T) {
	eng := startEngine(t, memory.New(), approvalHandlers(nil), mustParse(t, approvalYAML))
	sub := eng.Subscribe(0)
	defer sub.Close()
	id := submitID(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "approval", Context: map[string]any{"amount": 2000}})
	got := eventsUntil(t, sub, id, tasker.EventTaskCompleted)
	wantBriefs(t, got, "task_submitted", "task_started", "step_started validate/1", "step_completed validate/1",
		"step_started route/1", "step_completed route/1", "step_created manager_approval/0", "step_created finalize/0",
		"step_started manager_approval/1", "step_completed manager_approval/1", "step_started finalize/1",
		"step_completed finalize/1", "task_completed")
	if c := got[6]; !c.At.Equal(got[5].At) {
		t.Errorf("step_created at %s, want with the decision's outcome at %s", c.At, got[5].At)
	}
}

// TestEventsSlowSubscriber: a subscriber that does not read loses the
// events its buffer cannot hold while the engine goes on; the next event
// it gets says how many it lost, and so does Lost. Other subscribers lose
// nothing.
func TestEventsSlowSubscriber(t *testing.T) {
	const width = 50
	eng := startEngine(t, memory.New(), map[string]tasker.StepHandler{"bench.noop": noop}, mustParse(t, wideYAML(width)))
	slow, fast := eng.Subscribe(1), eng.Subscribe(0)
	defer slow.Close()
	defer fast.Close()
	req := tasker.SubmitRequest{Namespace: "perf", Name: "wide"}
	first := submitAndWait(t, eng, req) // slow is not read meanwhile
	// The task's events: its submission, start and end, and each step's
	// start and completion. Each is sent to slow before fast (the order they
	// subscribed in), so once fast has them all, slow has lost its share.
	all := make([]tasker.Event, 3+2*(width+2))
	for k := range all {
		all[k], _ = receive(t, fast)
		if ev := all[k]; ev.TaskID != first.ID || ev.Lost != 0 {
			t.Fatalf("fast subscriber: event %d is %s of %s after %d lost; want the first task's, none lost", k, ev.Kind, ev.TaskID, ev.Lost)
		}
	}
	lost := uint64(len(all) - 1) // slow's buffer holds the first
	if got := slow.Lost(); got != lost {
		t.Fatalf("slow.Lost() = %d, want %d", got, lost)
	}
	if ev, _ := receive(t, slow); ev.Kind != tasker.EventTaskSubmitted || ev.TaskID != first.ID || ev.Lost != 0 {
		t.Fatalf("slow's first event = %s of %s, Lost %d; want the first task's submission", ev.Kind, ev.TaskID, ev.Lost)
	}
	second := submitID(t, eng, req)
	if ev, _ := receive(t, slow); ev.Kind != tasker.EventTaskSubmitted || ev.TaskID != second || ev.Lost != lost {
		t.Fatalf("slow's next event = %s of %s, Lost %d; want the second submission after %d lost", ev.Kind, ev.TaskID, ev.Lost, lost)
	}
}

// TestEventsClose: Close ends a subscription (C is closed, nothing more
// comes), and Stop ends every one, even those taken after it.
func TestEventsClose(t *testing.T) {
	eng, err := tasker.New(memory.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	registerAll(t, eng, map[string]tasker.StepHandler{"ev.step": echoStep("any")})
	if err := eng.AddTemplates(mustParse(t, eventsChainYAML)); err != nil {
		t.Fatal(err)
	}
	closed, open := eng.Subscribe(4), eng.Subscribe(4)
	closed.Close()
	closed.Close() // harmless
	submitID(t, eng, tasker.SubmitRequest{Namespace: "ev", Name: "chain"})
	if ev, ok := receive(t, closed); ok {
		t.Fatalf("closed subscription got %s", ev.Kind)
	}
	if ev, _ := receive(t, open); ev.Kind != tasker.EventTaskSubmitted {
		t.Fatalf("open subscription got %s, want the submission before Start", ev.Kind)
	}
	if err := eng.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []*tasker.Subscription{open, eng.Subscribe(4)} {
		if ev, ok := receive(t, sub); ok {
			t.Fatalf("subscription after Stop got %s", ev.Kind)
		}
	}
	open.Close() // harmless after Stop
}

// TestEventsRecovery: an attempt a stop interrupted is reported by the next
// engine, as it adopts the task, as a retryable INTERRUPTED failure with no
// duration (it did not see the attempt begin), then the next attempt's
// events.
func TestEventsRecovery(t *testing.T) {
	st := memory.New()
	block := tasker.HandlerFunc(func(ctx context.Context, _ *tasker.StepContext) (any, error) {
		<-ctx.Done()
		return nil, context.Cause(ctx)
	})
	first := startEngine(t, st, map[string]tasker.StepHandler{"ev.step": block}, mustParse(t, eventsChainYAML))
	sub := first.Subscribe(0)
	id := submitID(t, first, tasker.SubmitRequest{Namespace: "ev", Name: "chain"})
	eventsUntil(t, sub, id, tasker.EventStepStarted)
	if err := first.StopAndCancel(context.Background()); err != nil {
		t.Fatal(err)
	}

	second, err := tasker.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	registerAll(t, second, map[string]tasker.StepHandler{"ev.step": echoStep("any")})
	if err := second.AddTemplates(mustParse(t, eventsChainYAML)); err != nil {
		t.Fatal(err)
	}
	sub = second.Subscribe(0)
	if err := second.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer second.Stop(context.Background())
	got := eventsUntil(t, sub, id, tasker.EventTaskCompleted)
	wantBriefs(t, got, "step_retrying a/1", "step_started a/2", "step_completed a/2", "step_started b/1",
		"step_completed b/1", "step_started c/1", "step_completed c/1", "task_completed")
	if r := got[0]; r.Error == nil || r.Error.Code != tasker.CodeInterrupted || !r.Error.Retryable || r.Duration != 0 {
		t.Errorf("step_retrying = %+v, error %+v; want a retryable INTERRUPTED failure with no duration", r, r.Error)
	}
}

// BenchmarkEvents is BenchmarkDispatch with no subscriber and with one
// that reads every event: the cost of events per step.
func BenchmarkEvents(b *testing.B) {
	const width = 1000
	for _, subscribers := range []int{0, 1} {
		b.Run(fmt.Sprintf("subscribers=%d", subscribers), func(b *testing.B) {
			eng := startEngine(b, memory.New(), map[string]tasker.StepHandler{"bench.noop": noop}, mustParseTB(b, wideYAML(width)))
			if subscribers > 0 {
				sub := eng.Subscribe(0)
				done := make(chan struct{})
				go func() {
					defer close(done)
					for range sub.C() {
					}
				}()
				b.Cleanup(func() { sub.Close(); <-done })
			}
			dispatchWide(b, eng, width)
		})
	}
}
