package taskerotel_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/store/sqlite"
	"github.com/gotasker/tasker/taskerotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// attrs returns a span's attributes by key.
func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value)
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// byName returns the ended spans named name, in the order they ended.
func byName(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// submitUnder submits a shop/order task under a span "submit" of tp, ended
// when it returns; it returns the task ID and the submitter's span context.
func submitUnder(t *testing.T, eng *tasker.Engine, tp trace.TracerProvider) (string, trace.SpanContext) {
	t.Helper()
	ctx, span := tp.Tracer("test").Start(context.Background(), "submit")
	defer span.End()
	id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "shop", Name: "order"})
	if err != nil {
		t.Fatal(err)
	}
	return id, span.SpanContext()
}

// TestSpanTree: the submitter's span is the parent of the task's span,
// itself the parent of a span per attempt, which the handler's ctx
// carries; attributes name the task, template, step and attempt, and a
// failed attempt's span has status error with the failure's type and code.
func TestSpanTree(t *testing.T) {
	var mu sync.Mutex
	inHandler := map[int]trace.SpanContext{} // the charge attempts' ctx spans, by attempt
	charge := flaky()
	r := newRig(t, memory.New(), map[string]tasker.StepHandler{
		"test.charge": tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
			mu.Lock()
			inHandler[sc.Attempt()] = trace.SpanContextFromContext(ctx)
			mu.Unlock()
			return charge(ctx, sc)
		}),
		"test.ship": failing(),
	}, true)
	id, submitter := submitUnder(t, r.eng, r.tp)
	if task := r.wait(t, id); task.State != tasker.TaskFailed {
		t.Fatalf("task state = %s, want error", task.State)
	}
	r.stop(t)
	spans := r.spans.GetSpans()

	task := checkTaskSpan(t, spans, id, submitter)

	charges := byName(spans, taskerotel.StepSpan+" charge")
	ships := byName(spans, taskerotel.StepSpan+" ship")
	if len(charges) != 2 || len(ships) != 1 {
		t.Fatalf("%d charge and %d ship spans, want 2 and 1", len(charges), len(ships))
	}
	for _, s := range append(charges, ships...) {
		if s.Parent.SpanID() != task.SpanContext.SpanID() || s.SpanContext.TraceID() != submitter.TraceID() {
			t.Errorf("span %s's parent = %v, want the task span", s.Name, s.Parent)
		}
		if a := attrs(s); a[taskerotel.AttrTaskID].AsString() != id || a[taskerotel.AttrTemplate].AsString() != "order" {
			t.Errorf("span %s attributes = %v", s.Name, s.Attributes)
		}
		if s.StartTime.Before(task.StartTime) || s.EndTime.After(task.EndTime) {
			t.Errorf("span %s [%v, %v] is outside its task's [%v, %v]", s.Name, s.StartTime, s.EndTime, task.StartTime, task.EndTime)
		}
	}
	checkAttempt(t, charges[0], "charge", 1, codes.Error, "retryable_error", "NETWORK")
	checkAttempt(t, charges[1], "charge", 2, codes.Ok, "", "")
	checkAttempt(t, ships[0], "ship", 1, codes.Error, "validation_error", "NO_STOCK")
	for i, s := range charges {
		if got := inHandler[i+1]; got.SpanID() != s.SpanContext.SpanID() {
			t.Errorf("attempt %d: the handler's ctx carries span %v, want its attempt's %v", i+1, got.SpanID(), s.SpanContext.SpanID())
		}
	}
}

// checkTaskSpan checks that spans hold one task span, for task id, a child
// of the submitter's span, failed, with the task's attributes; and returns
// it.
func checkTaskSpan(t *testing.T, spans tracetest.SpanStubs, id string, submitter trace.SpanContext) tracetest.SpanStub {
	t.Helper()
	tasks := byName(spans, taskerotel.TaskSpan+" shop/order")
	if len(tasks) != 1 {
		t.Fatalf("%d task spans, want 1: %v", len(tasks), spans)
	}
	task := tasks[0]
	if task.Parent.SpanID() != submitter.SpanID() || task.SpanContext.TraceID() != submitter.TraceID() {
		t.Errorf("task span's parent = %v, want the submitter's span %v", task.Parent, submitter)
	}
	ta := attrs(task)
	if ta[taskerotel.AttrTaskID].AsString() != id || ta[taskerotel.AttrNamespace].AsString() != "shop" ||
		ta[taskerotel.AttrTemplate].AsString() != "order" || ta[taskerotel.AttrVersion].AsString() != "1.2.0" ||
		ta[taskerotel.AttrState].AsString() != string(tasker.TaskFailed) {
		t.Errorf("task span attributes = %v", task.Attributes)
	}
	if task.Status.Code != codes.Error {
		t.Errorf("task span status = %v, want error", task.Status)
	}
	return task
}

// checkAttempt checks an attempt span's step, attempt, status and error
// attributes (none when typ is "").
func checkAttempt(t *testing.T, s tracetest.SpanStub, step string, attempt int64, status codes.Code, typ, code string) {
	t.Helper()
	a := attrs(s)
	if a[taskerotel.AttrStep].AsString() != step || a[taskerotel.AttrAttempt].AsInt64() != attempt {
		t.Errorf("span %s: step %q attempt %d, want %q %d", s.Name, a[taskerotel.AttrStep].AsString(),
			a[taskerotel.AttrAttempt].AsInt64(), step, attempt)
	}
	if s.Status.Code != status {
		t.Errorf("span %s attempt %d: status %v, want %v", s.Name, attempt, s.Status, status)
	}
	if a[taskerotel.AttrErrorType].AsString() != typ || a[taskerotel.AttrErrorCode].AsString() != code {
		t.Errorf("span %s attempt %d: error %q/%q, want %q/%q", s.Name, attempt,
			a[taskerotel.AttrErrorType].AsString(), a[taskerotel.AttrErrorCode].AsString(), typ, code)
	}
}

// TestTraceContinuesAfterRestart: a task submitted under a span to an
// engine that stops before running it is run by the next engine on the
// same SQLite file, in another tracer provider (another process), and its
// spans continue the submitter's trace, read back from the store.
func TestTraceContinuesAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.db")
	handlers := map[string]tasker.StepHandler{"test.charge": flaky(), "test.ship": tasker.HandlerFunc(
		func(context.Context, *tasker.StepContext) (any, error) { return "shipped", nil })}

	st1, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := newRig(t, st1, handlers, false) // never started: the task is stored, not run
	submitterTP := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter()))
	id, submitter := submitUnder(t, first.eng, submitterTP)
	first.stop(t)
	if err := st1.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(first.spans.GetSpans()); n != 0 {
		t.Fatalf("the engine that did not run the task made %d spans", n)
	}

	st2, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	second := newRig(t, st2, handlers, true) // recovers the task
	if task := second.wait(t, id); task.State != tasker.TaskComplete {
		t.Fatalf("task state = %s, want complete", task.State)
	}
	second.stop(t)
	spans := second.spans.GetSpans()
	tasks := byName(spans, taskerotel.TaskSpan+" shop/order")
	if len(tasks) != 1 {
		t.Fatalf("%d task spans, want 1", len(tasks))
	}
	if tasks[0].Parent.SpanID() != submitter.SpanID() || tasks[0].Parent.TraceID() != submitter.TraceID() ||
		!tasks[0].Parent.IsRemote() {
		t.Errorf("task span's parent = %+v, want the submitter's remote span %+v", tasks[0].Parent, submitter)
	}
	if len(spans) != 4 { // the task, charge twice, ship
		t.Errorf("%d spans, want 4", len(spans))
	}
	for _, s := range spans {
		if s.SpanContext.TraceID() != submitter.TraceID() {
			t.Errorf("span %s is in trace %v, want the submitter's %v", s.Name, s.SpanContext.TraceID(), submitter.TraceID())
		}
	}
}
