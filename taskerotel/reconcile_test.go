package taskerotel_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/taskerotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/goleak"
)

// shipUnlessFail ships, or fails for good when the task input's "fail" is
// true.
func shipUnlessFail() tasker.HandlerFunc {
	return func(_ context.Context, sc *tasker.StepContext) (any, error) {
		var fail bool
		if sc.Input("fail", &fail); fail {
			return nil, &tasker.StepError{Message: errNoStock.Error(), Type: tasker.ErrorValidation, Code: "NO_STOCK"}
		}
		return "shipped", nil
	}
}

// isTaskSpan reports whether s is a task span.
func isTaskSpan(s sdktrace.ReadOnlySpan) bool {
	return strings.HasPrefix(s.Name(), taskerotel.TaskSpan+" ")
}

// spanAttr returns the value of s's attribute k.
func spanAttr(s sdktrace.ReadOnlySpan, k attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// TestLostEndIsReconciled: a task whose end event the subscription lost
// has its span ended nevertheless, at the reconciler's next pass, with the
// task's end state, status and end time as the engine tells them, and the
// table no longer holds it. The loss is forced as a slow exporter would:
// the event loop is held up ending the span of a first task, a, while
// further tasks fill the subscription's buffer (16 events: all of a's fit
// in it) and the last one, b, loses every event. The reconciler runs at
// the test's tick, after the loss: b's span is younger than
// ReconcileInterval (10s), so only the loss makes it look. a's span, whose
// end was heard, says nothing of reconciliation.
func TestLostEndIsReconciled(t *testing.T) {
	held, release := make(chan struct{}), make(chan struct{})
	ended := make(chan sdktrace.ReadOnlySpan, 8) // the task spans that end after a's
	first := true                                // no pass runs before the tick: the event loop ends a's span
	hold := onEnd(func(s sdktrace.ReadOnlySpan) {
		switch {
		case !isTaskSpan(s):
		case first:
			first = false
			close(held)
			<-release
		default:
			ended <- s
		}
	})
	r := newTelemetryWith(t, taskerotel.Options{EventBuffer: 16}, hold)
	tick := make(chan time.Time)
	r.tel.ReconcileOn(tick)
	r.engine(t, memory.New(), map[string]tasker.StepHandler{"test.charge": flaky(), "test.ship": shipUnlessFail()}, true)
	released := false
	defer func() {
		if !released {
			close(release) // the test failed early: let the event loop go
		}
	}()
	submit := func(input any) (string, *tasker.Task) {
		t.Helper()
		id, err := r.eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "shop", Name: "order", Context: input})
		if err != nil {
			t.Fatal(err)
		}
		return id, r.wait(t, id)
	}

	a, _ := submit(nil)
	select {
	case <-held: // the event loop is ending a's span, the buffer empty
	case <-time.After(10 * time.Second):
		t.Fatal("the event loop did not end a's span")
	}
	submit(nil) // 9 events each: these two fill the buffer
	submit(nil)
	b, task := submit(map[string]bool{"fail": true}) // its end event was sent, and lost, before Wait returned
	if task.State != tasker.TaskFailed {
		t.Fatalf("task b is %s, want error", task.State)
	}
	close(release)
	released = true
	select {
	case tick <- time.Now():
	case <-time.After(5 * time.Second): // no reconciler: b's span stays open
	}

	var s sdktrace.ReadOnlySpan
	for s == nil {
		select {
		case e := <-ended:
			if spanAttr(e, taskerotel.AttrTaskID).AsString() == b {
				s = e
			}
		case <-time.After(10 * time.Second):
			t.Fatal("task b's span is still open 10s after its end")
		}
	}
	if got := spanAttr(s, taskerotel.AttrState).AsString(); got != string(tasker.TaskFailed) {
		t.Errorf("b's span: %s = %q, want %q", taskerotel.AttrState, got, tasker.TaskFailed)
	}
	if s.Status().Code != codes.Error || !strings.HasPrefix(s.Status().Description, "task failed") {
		t.Errorf("b's span: status %+v, want error, task failed", s.Status())
	}
	if !s.EndTime().Equal(task.FinishedAt) {
		t.Errorf("b's span ended at %v, want the task's end, %v", s.EndTime(), task.FinishedAt)
	}
	if got := spanAttr(s, taskerotel.AttrUnobserved).AsString(); got != taskerotel.UnobservedReconciled {
		t.Errorf("b's span: %s = %q, want %q", taskerotel.AttrUnobserved, got, taskerotel.UnobservedReconciled)
	}
	if n := openTaskSpans(t, r); n != 0 {
		t.Errorf("%d task spans open, want 0", n)
	}
	m := collect(t, r)
	if n := sumOf(t, m[taskerotel.MetricTaskSpansUnobserved], taskerotel.AttrUnobserved.String(taskerotel.UnobservedReconciled),
		taskerotel.AttrState.String(string(tasker.TaskFailed)), taskerotel.AttrTemplate.String("order")); n != 1 {
		t.Errorf("%s reconciled, error = %d, want 1", taskerotel.MetricTaskSpansUnobserved, n)
	}
	if n := sumOf(t, m[taskerotel.MetricTaskSpansOpen]); n != 0 {
		t.Errorf("%s = %d, want 0", taskerotel.MetricTaskSpansOpen, n)
	}

	r.stop(t)
	// Every event of b was lost, and no event came after to tell of it.
	if n := sumOf(t, collect(t, r)[taskerotel.MetricEventsLost]); n < 9 {
		t.Errorf("%s = %d, want b's 9 events at least", taskerotel.MetricEventsLost, n)
	}
	for _, s := range byName(r.spans.GetSpans(), taskerotel.TaskSpan+" shop/order") {
		if at := attrs(s); at[taskerotel.AttrTaskID].AsString() == a && (at[taskerotel.AttrUnobserved].AsString() != "" ||
			at[taskerotel.AttrState].AsString() != string(tasker.TaskComplete)) {
			t.Errorf("a's span, whose end was heard: %v", s.Attributes)
		}
	}
}

// TestUnknownTaskIsNotFound: the span of a task the observed engine does
// not know (as one retention deleted) is ended as not found, its end state
// unknown, while that of a task still running, looked at first (it was
// opened first), stays open until its task's end.
func TestUnknownTaskIsNotFound(t *testing.T) {
	ended := make(chan sdktrace.ReadOnlySpan, 4)
	r := newTelemetryWith(t, taskerotel.Options{ReconcileInterval: 20 * time.Millisecond}, onEnd(func(s sdktrace.ReadOnlySpan) {
		if isTaskSpan(s) {
			ended <- s
		}
	}))
	running, release := make(chan struct{}), make(chan struct{})
	charge := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) {
		close(running)
		<-release
		return "charged", nil
	})
	r.engine(t, memory.New(), map[string]tasker.StepHandler{"test.charge": charge, "test.ship": shipUnlessFail()}, true)
	id, err := r.eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "shop", Name: "order"})
	if err != nil {
		t.Fatal(err)
	}
	<-running
	attemptOf(t, r, "ghost") // a span for a task no engine knows

	var s sdktrace.ReadOnlySpan
	select {
	case s = <-ended:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the unknown task's span is still open after 10s")
	}
	if got := spanAttr(s, taskerotel.AttrTaskID).AsString(); got != "ghost" {
		close(release)
		t.Fatalf("the span of task %s ended, want ghost's: the running task's span was ended", got)
	}
	if why := spanAttr(s, taskerotel.AttrUnobserved).AsString(); why != taskerotel.UnobservedNotFound ||
		spanAttr(s, taskerotel.AttrState).Type() != attribute.INVALID || s.Status().Code != codes.Unset {
		t.Errorf("ghost's span: %v, status %v; want %s = %s, no state, no status", s.Attributes(), s.Status(),
			taskerotel.AttrUnobserved, taskerotel.UnobservedNotFound)
	}
	if n := openTaskSpans(t, r); n != 1 {
		t.Errorf("%d task spans open, want 1, the running task's", n)
	}
	close(release)
	r.wait(t, id)
	select {
	case s = <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the task's span is still open 10s after its end")
	}
	if spanAttr(s, taskerotel.AttrTaskID).AsString() != id || spanAttr(s, taskerotel.AttrUnobserved).AsString() != "" ||
		spanAttr(s, taskerotel.AttrState).AsString() != string(tasker.TaskComplete) {
		t.Errorf("the task's span: %v, want it ended by its event, complete", s.Attributes())
	}
	n := sumOf(t, collect(t, r)[taskerotel.MetricTaskSpansUnobserved], taskerotel.AttrUnobserved.String(taskerotel.UnobservedNotFound))
	if n != 1 {
		t.Errorf("%s not_found = %d, want 1", taskerotel.MetricTaskSpansUnobserved, n)
	}
}

// TestReconcilerStops: the goroutines Observe starts, the event loop and
// the reconciler, end when the engine stops, Close or not; and with Close,
// the engine still running.
func TestReconcilerStops(t *testing.T) {
	before := goleak.IgnoreCurrent()
	r := newTelemetryWith(t, taskerotel.Options{ReconcileInterval: time.Millisecond})
	r.engine(t, memory.New(), map[string]tasker.StepHandler{"test.charge": flaky(), "test.ship": shipUnlessFail()}, true)
	id, err := r.eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "shop", Name: "order"})
	if err != nil {
		t.Fatal(err)
	}
	r.wait(t, id)
	if err := r.eng.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before) // the engine stopped; r.tel is not closed

	// No retention: its goroutines start in their own time, after Start.
	eng, err := tasker.New(memory.New(), r.tel.Configure(&tasker.Config{Retention: tasker.Retention{Disabled: true}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Stop(context.Background()) })
	running := goleak.IgnoreCurrent()
	if err := r.tel.Observe(eng); err != nil {
		t.Fatal(err)
	}
	if goleak.Find(running) == nil {
		t.Fatal("Observe started no goroutine")
	}
	if err := r.tel.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, running)
}
