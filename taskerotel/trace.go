package taskerotel

import (
	"context"
	"strconv"
	"time"

	"github.com/gotasker/tasker"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The attributes of the spans, and of the metrics where they apply.
const (
	AttrTaskID      = attribute.Key("tasker.task.id")
	AttrNamespace   = attribute.Key("tasker.namespace")
	AttrTemplate    = attribute.Key("tasker.template")
	AttrVersion     = attribute.Key("tasker.version")
	AttrStep        = attribute.Key("tasker.step")
	AttrAttempt     = attribute.Key("tasker.attempt")
	AttrErrorType   = attribute.Key("error.type") // the failure's type (tasker.ErrorType)
	AttrErrorCode   = attribute.Key("tasker.error.code")
	AttrRetryable   = attribute.Key("tasker.error.retryable")
	AttrOutcome     = attribute.Key("tasker.outcome") // completed, retrying, failed, cancelled (metrics)
	AttrState       = attribute.Key("tasker.state")   // a task's state (metrics)
	AttrInterrupted = attribute.Key("tasker.interrupted")
	AttrCancelled   = attribute.Key("tasker.cancelled")
	AttrParked      = attribute.Key("tasker.parked")
	// AttrUnobserved is set on a task span that was ended without its
	// task's end event (one of the Unobserved values), and on the
	// tasker.telemetry.task_spans.unobserved counter.
	AttrUnobserved = attribute.Key("tasker.unobserved")
)

// The values of AttrUnobserved: why a task span was ended without its
// task's end event, and what its end says.
const (
	// UnobservedReconciled: the event was lost, or went to another engine
	// on a shared store; the span was ended when an engine said the task
	// had ended, with its end state (AttrState), status and end time.
	UnobservedReconciled = "reconciled"
	// UnobservedNotFound: no observed engine knows the task any more
	// (retention deleted it); the span ends when that was found, its end
	// state unknown (no AttrState, status unset).
	UnobservedNotFound = "not_found"
	// UnobservedEvicted: opening another task span would have exceeded
	// Options.MaxTaskSpans, and this was the oldest open one; it ends then,
	// its task's end state unknown (no AttrState, status unset).
	UnobservedEvicted = "evicted"
)

// The span names: TaskSpan + " " + namespace/name, StepSpan + " " + step.
const (
	TaskSpan = "tasker.task"
	StepSpan = "tasker.step"
)

// capture is Config.CaptureContext: the propagator's fields of ctx.
func (t *Telemetry) capture(ctx context.Context) map[string]string {
	c := propagation.MapCarrier{}
	t.propagator.Inject(ctx, c)
	if len(c) == 0 {
		return nil
	}
	return c
}

// attempt is Config.Attempt: it starts the attempt's span, a child of its
// task's span, which it starts on the task's first attempt in this
// process, as a child of the trace context stored with the task.
func (t *Telemetry) attempt(ctx context.Context, sc *tasker.StepContext) (context.Context, func(tasker.AttemptEnd)) {
	info := sc.Task()
	task := t.taskSpan(info)
	ctx, span := t.tracer.Start(trace.ContextWithSpan(ctx, task), StepSpan+" "+sc.StepName(),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(AttrTaskID.String(info.ID), AttrNamespace.String(info.Namespace),
			AttrTemplate.String(info.Name), AttrVersion.String(info.Version),
			AttrStep.String(sc.StepName()), AttrAttempt.Int(sc.Attempt())))
	return ctx, func(end tasker.AttemptEnd) { endAttempt(span, end) }
}

// endAttempt ends span with what its attempt came to.
func endAttempt(span trace.Span, end tasker.AttemptEnd) {
	switch {
	case end.Error != nil:
		span.SetAttributes(AttrErrorType.String(string(end.Error.Type)), AttrRetryable.Bool(end.Error.Retryable))
		if end.Error.Code != "" {
			span.SetAttributes(AttrErrorCode.String(end.Error.Code))
		}
		span.SetStatus(codes.Error, end.Error.Message)
	case end.Interrupted:
		span.SetAttributes(AttrInterrupted.Bool(true))
	case end.Cancelled:
		span.SetAttributes(AttrCancelled.Bool(true))
	case end.Parked:
		span.SetAttributes(AttrParked.Bool(true))
	default:
		span.SetStatus(codes.Ok, "")
	}
	span.End()
}

// taskSpan returns the open span of task info, starting it, from the
// task's submission, if this process has none. Starting one beyond the
// cap ends the oldest open one, as UnobservedEvicted.
func (t *Telemetry) taskSpan(info tasker.TaskInfo) trace.Span {
	t.mu.Lock()
	if s := t.tasks.get(info.ID); s != nil {
		t.mu.Unlock()
		return s.span
	}
	parent := t.propagator.Extract(context.Background(), propagation.MapCarrier(info.Trace))
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(AttrTaskID.String(info.ID), AttrNamespace.String(info.Namespace),
			AttrTemplate.String(info.Name), AttrVersion.String(info.Version))}
	if !info.Submitted.IsZero() {
		opts = append(opts, trace.WithTimestamp(info.Submitted))
	}
	_, span := t.tracer.Start(parent, TaskSpan+" "+info.Namespace+"/"+info.Name, opts...)
	var evicted *openSpan
	if t.maxSpans > 0 && t.tasks.len() >= t.maxSpans {
		evicted = t.tasks.oldest()
		t.tasks.remove(evicted)
	}
	t.tasks.add(&openSpan{id: info.ID, namespace: info.Namespace, name: info.Name, span: span, opened: time.Now()})
	t.mu.Unlock()
	t.inst.openSpans.Add(context.Background(), 1)
	if evicted != nil {
		t.endUnobserved(evicted, UnobservedEvicted, time.Now())
	}
	return span
}

// endTask ends the span of the task ev reports the end of, if open.
func (t *Telemetry) endTask(ev tasker.Event) {
	t.mu.Lock()
	s := t.tasks.get(ev.TaskID)
	if s != nil {
		t.tasks.remove(s)
	}
	t.mu.Unlock()
	if s == nil {
		return
	}
	t.inst.openSpans.Add(context.Background(), -1)
	endSpan(s.span, taskState(ev.Kind), ev.Reason, ev.At)
}

// endSpan ends span, of a task that ended in state at at, for reason
// (when recorded): with status error when it failed, ok when it
// completed.
func endSpan(span trace.Span, state, reason string, at time.Time) {
	span.SetAttributes(AttrState.String(state))
	switch state {
	case string(tasker.TaskFailed):
		msg := "task failed"
		if reason != "" {
			msg += ": " + reason
		}
		span.SetStatus(codes.Error, msg)
	case string(tasker.TaskComplete):
		span.SetStatus(codes.Ok, "")
	}
	span.End(trace.WithTimestamp(at))
}

// endUnobserved ends s, which t no longer holds, at at, its task's end
// not observed: why is an Unobserved value other than
// UnobservedReconciled.
func (t *Telemetry) endUnobserved(s *openSpan, why string, at time.Time) {
	t.countUnobserved(s, why)
	s.span.SetAttributes(AttrUnobserved.String(why))
	s.span.End(trace.WithTimestamp(at))
}

// countUnobserved counts the end of s, which t no longer holds, without
// its task's end event: why is an Unobserved value, and attrs are the
// counter's attributes besides the template's and why.
func (t *Telemetry) countUnobserved(s *openSpan, why string, attrs ...attribute.KeyValue) {
	ctx := context.Background()
	t.inst.openSpans.Add(ctx, -1)
	t.inst.spansUnobserved.Add(ctx, 1, metric.WithAttributes(append(attrs, AttrNamespace.String(s.namespace),
		AttrTemplate.String(s.name), AttrUnobserved.String(why))...))
}

// endOpenTasks ends the task spans still open, their tasks interrupted.
func (t *Telemetry) endOpenTasks() {
	t.mu.Lock()
	open := t.tasks.drain()
	t.mu.Unlock()
	if len(open) == 0 {
		return
	}
	t.inst.openSpans.Add(context.Background(), -int64(len(open)))
	now := time.Now()
	for _, s := range open {
		s.span.SetAttributes(AttrInterrupted.Bool(true))
		s.span.End(trace.WithTimestamp(now))
	}
}

// taskState is the state a task's end event leaves it in.
func taskState(k tasker.EventKind) string {
	switch k {
	case tasker.EventTaskCompleted:
		return string(tasker.TaskComplete)
	case tasker.EventTaskFailed:
		return string(tasker.TaskFailed)
	case tasker.EventTaskCancelled:
		return string(tasker.TaskCancelled)
	}
	return strconv.Quote(string(k))
}
