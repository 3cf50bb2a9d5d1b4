package taskerotel

import (
	"context"
	"strconv"
	"time"

	"github.com/gotasker/tasker"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
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
// task's submission, if this process has none.
func (t *Telemetry) taskSpan(info tasker.TaskInfo) trace.Span {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.tasks[info.ID]; ok {
		return s
	}
	parent := t.propagator.Extract(context.Background(), propagation.MapCarrier(info.Trace))
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(AttrTaskID.String(info.ID), AttrNamespace.String(info.Namespace),
			AttrTemplate.String(info.Name), AttrVersion.String(info.Version))}
	if !info.Submitted.IsZero() {
		opts = append(opts, trace.WithTimestamp(info.Submitted))
	}
	_, s := t.tracer.Start(parent, TaskSpan+" "+info.Namespace+"/"+info.Name, opts...)
	t.tasks[info.ID] = s
	return s
}

// endTask ends the span of the task ev reports the end of, if open.
func (t *Telemetry) endTask(ev tasker.Event) {
	t.mu.Lock()
	s, ok := t.tasks[ev.TaskID]
	delete(t.tasks, ev.TaskID)
	t.mu.Unlock()
	if !ok {
		return
	}
	s.SetAttributes(AttrState.String(taskState(ev.Kind)))
	if ev.Kind == tasker.EventTaskFailed {
		msg := "task failed"
		if ev.Reason != "" {
			msg += ": " + ev.Reason
		}
		s.SetStatus(codes.Error, msg)
	} else if ev.Kind == tasker.EventTaskCompleted {
		s.SetStatus(codes.Ok, "")
	}
	s.End(trace.WithTimestamp(ev.At))
}

// endOpenTasks ends the task spans still open, their tasks interrupted.
func (t *Telemetry) endOpenTasks() {
	t.mu.Lock()
	open := t.tasks
	t.tasks = make(map[string]trace.Span)
	t.mu.Unlock()
	now := time.Now()
	for _, s := range open {
		s.SetAttributes(AttrInterrupted.Bool(true))
		s.End(trace.WithTimestamp(now))
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
