package taskerotel_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/taskerotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
)

// openTaskSpans checks r's table of open task spans and returns its size.
func openTaskSpans(t *testing.T, r *rig) int {
	t.Helper()
	n, err := r.tel.OpenTaskSpans()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// attemptOf runs an attempt of a step of task id through r's Attempt hook,
// as an engine's worker would, without an engine: its task span is opened
// if r has none open for id.
func attemptOf(t *testing.T, r *rig, id string) {
	t.Helper()
	sc, err := tasker.NewStepContext(tasker.FakeStep{TaskID: id})
	if err != nil {
		t.Fatal(err)
	}
	_, end := r.tel.Configure(nil).Attempt(context.Background(), sc)
	end(tasker.AttemptEnd{})
}

// TestTaskSpansCapped: with MaxTaskSpans 3, each task span opened beyond
// the third ends the oldest open one, as evicted, its end state unknown;
// the table never holds more than 3, and the metrics say so. Close ends
// the rest, interrupted.
func TestTaskSpansCapped(t *testing.T) {
	r := newTelemetryWith(t, taskerotel.Options{MaxTaskSpans: 3})
	t.Cleanup(func() { r.tel.Close() })
	for i := 1; i <= 7; i++ {
		attemptOf(t, r, fmt.Sprint("task-", i))
		attemptOf(t, r, fmt.Sprint("task-", i)) // its second attempt: the same span
		if n, want := openTaskSpans(t, r), min(i, 3); n != want {
			t.Fatalf("after %d tasks, %d task spans open, want %d", i, n, want)
		}
	}
	tasks := byName(r.spans.GetSpans(), taskerotel.TaskSpan+" tasker/fake")
	if len(tasks) != 4 {
		t.Fatalf("%d task spans ended, want 4 (tasks 1 to 4)", len(tasks))
	}
	for i, s := range tasks {
		a := attrs(s)
		if id := a[taskerotel.AttrTaskID].AsString(); id != fmt.Sprint("task-", i+1) {
			t.Errorf("task span %d ended is task %s's, want the oldest open, task-%d's", i, id, i+1)
		}
		if why := a[taskerotel.AttrUnobserved].AsString(); why != taskerotel.UnobservedEvicted {
			t.Errorf("task span %d: %s = %q, want %q", i, taskerotel.AttrUnobserved, why, taskerotel.UnobservedEvicted)
		}
		if _, ok := a[taskerotel.AttrState]; ok || s.Status.Code != codes.Unset {
			t.Errorf("task span %d, evicted: state %v, status %v; want neither (its end is not known)", i,
				a[taskerotel.AttrState].AsString(), s.Status)
		}
	}
	m := collect(t, r)
	fake := []attribute.KeyValue{taskerotel.AttrNamespace.String("tasker"), taskerotel.AttrTemplate.String("fake")}
	if n := sumOf(t, m[taskerotel.MetricTaskSpansOpen]); n != 3 {
		t.Errorf("%s = %d, want 3", taskerotel.MetricTaskSpansOpen, n)
	}
	if n := sumOf(t, m[taskerotel.MetricTaskSpansUnobserved], append(fake,
		taskerotel.AttrUnobserved.String(taskerotel.UnobservedEvicted))...); n != 4 {
		t.Errorf("%s evicted = %d, want 4", taskerotel.MetricTaskSpansUnobserved, n)
	}

	if err := r.tel.Close(); err != nil {
		t.Fatal(err)
	}
	tasks = byName(r.spans.GetSpans(), taskerotel.TaskSpan+" tasker/fake")
	if len(tasks) != 7 || openTaskSpans(t, r) != 0 {
		t.Fatalf("after Close, %d task spans ended and %d open, want 7 and 0", len(tasks), openTaskSpans(t, r))
	}
	for _, s := range tasks[4:] {
		if a := attrs(s); !a[taskerotel.AttrInterrupted].AsBool() || a[taskerotel.AttrUnobserved].AsString() != "" {
			t.Errorf("task span of %s, open at Close: attributes %v, want interrupted", a[taskerotel.AttrTaskID].AsString(), s.Attributes)
		}
	}
	if n := sumOf(t, collect(t, r)[taskerotel.MetricTaskSpansOpen]); n != 0 {
		t.Errorf("after Close, %s = %d, want 0", taskerotel.MetricTaskSpansOpen, n)
	}
}

// TestTaskSpansUncapped: a negative MaxTaskSpans bounds nothing.
func TestTaskSpansUncapped(t *testing.T) {
	r := newTelemetryWith(t, taskerotel.Options{MaxTaskSpans: -1})
	t.Cleanup(func() { r.tel.Close() })
	for i := 1; i <= 5; i++ {
		attemptOf(t, r, fmt.Sprint("task-", i))
	}
	if n := openTaskSpans(t, r); n != 5 || len(r.spans.GetSpans()) != 5 { // the attempts' spans
		t.Errorf("%d task spans open, %d spans ended; want 5 and 5", n, len(r.spans.GetSpans()))
	}
}
