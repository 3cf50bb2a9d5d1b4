package taskerotel

import (
	"context"
	"errors"
	"time"

	"github.com/gotasker/tasker"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The metric names.
const (
	MetricStepsStarted    = "tasker.steps.started"   // attempts begun, by namespace, template and step
	MetricStepsCompleted  = "tasker.steps.completed" // steps completed
	MetricStepsRetried    = "tasker.steps.retried"   // attempts failed, their step to be retried
	MetricStepsFailed     = "tasker.steps.failed"    // steps failed for good
	MetricAttemptDuration = "tasker.step.attempt.duration"
	MetricTasksEnded      = "tasker.tasks.ended" // by namespace, template and state
	MetricTasks           = "tasker.tasks"       // unfinished tasks, by namespace, template and state
	MetricQueueDepth      = "tasker.queue.depth"
	MetricCommitBatch     = "tasker.sqlite.commit.batch_size"
	MetricCommitDuration  = "tasker.sqlite.commit.duration"
	MetricEventsLost      = "tasker.telemetry.events_lost"
	// MetricTaskSpansOpen is the task spans taskerotel keeps open (at most
	// Options.MaxTaskSpans).
	MetricTaskSpansOpen = "tasker.telemetry.task_spans.open"
	// MetricTaskSpansUnobserved counts the task spans ended without their
	// task's end event, by namespace, template and why (AttrUnobserved;
	// with AttrState when reconciled). The tasks reconciled are not in
	// tasker.tasks.ended, which counts the ends the events told of.
	MetricTaskSpansUnobserved = "tasker.telemetry.task_spans.unobserved"
)

// instruments are the synchronous instruments t records on.
type instruments struct {
	meter                               metric.Meter
	started, completed, retried, failed metric.Int64Counter
	tasksEnded, eventsLost              metric.Int64Counter
	spansUnobserved                     metric.Int64Counter
	openSpans                           metric.Int64UpDownCounter
	attemptDur, commitDur               metric.Float64Histogram
	commitBatch                         metric.Int64Histogram
	tasks, queue                        metric.Int64ObservableGauge
}

func newInstruments(m metric.Meter) (instruments, error) {
	in := instruments{meter: m}
	var errs [13]error
	in.started, errs[0] = m.Int64Counter(MetricStepsStarted, metric.WithUnit("{attempt}"),
		metric.WithDescription("Step attempts begun."))
	in.completed, errs[1] = m.Int64Counter(MetricStepsCompleted, metric.WithUnit("{step}"),
		metric.WithDescription("Steps completed."))
	in.retried, errs[2] = m.Int64Counter(MetricStepsRetried, metric.WithUnit("{attempt}"),
		metric.WithDescription("Step attempts that failed, the step to be retried."))
	in.failed, errs[3] = m.Int64Counter(MetricStepsFailed, metric.WithUnit("{step}"),
		metric.WithDescription("Steps that failed for good."))
	in.tasksEnded, errs[4] = m.Int64Counter(MetricTasksEnded, metric.WithUnit("{task}"),
		metric.WithDescription("Tasks that ended, by their end state."))
	in.eventsLost, errs[5] = m.Int64Counter(MetricEventsLost, metric.WithUnit("{event}"),
		metric.WithDescription("Engine events lost to a full subscription buffer: metrics miss them."))
	in.attemptDur, errs[6] = m.Float64Histogram(MetricAttemptDuration, metric.WithUnit("s"),
		metric.WithDescription("How long step attempts ran, from claim to outcome."))
	in.commitDur, errs[7] = m.Float64Histogram(MetricCommitDuration, metric.WithUnit("s"),
		metric.WithDescription("How long the SQLite store's transactions took to commit."))
	in.commitBatch, errs[8] = m.Int64Histogram(MetricCommitBatch, metric.WithUnit("{request}"),
		metric.WithDescription("Write requests per SQLite transaction (group commit)."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256))
	in.tasks, errs[9] = m.Int64ObservableGauge(MetricTasks, metric.WithUnit("{task}"),
		metric.WithDescription("Unfinished tasks in the store (pending, in_progress)."))
	in.queue, errs[10] = m.Int64ObservableGauge(MetricQueueDepth, metric.WithUnit("{item}"),
		metric.WithDescription("Work ready and waiting for a free worker."))
	in.openSpans, errs[11] = m.Int64UpDownCounter(MetricTaskSpansOpen, metric.WithUnit("{span}"),
		metric.WithDescription("Task spans open, waiting for their task's end."))
	in.spansUnobserved, errs[12] = m.Int64Counter(MetricTaskSpansUnobserved, metric.WithUnit("{span}"),
		metric.WithDescription("Task spans ended without their task's end event: reconciled with the engine, "+
			"their task not found, or evicted by the cap on open spans."))
	return in, errors.Join(errs[:]...)
}

// observeEngine registers the gauges read from eng.
func (in *instruments) observeEngine(eng *tasker.Engine) (metric.Registration, error) {
	return in.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		o.ObserveInt64(in.queue, int64(eng.QueueDepth()))
		return observeTasks(ctx, eng, o, in.tasks)
	}, in.tasks, in.queue)
}

type taskKey struct{ namespace, name string }

// observeTasks observes the unfinished tasks of eng's store by state; its
// cost is a read of those tasks per collection.
func observeTasks(ctx context.Context, eng *tasker.Engine, o metric.Observer, g metric.Int64ObservableGauge) error {
	for _, st := range []tasker.TaskState{tasker.TaskPending, tasker.TaskInProgress} {
		ts, err := eng.List(ctx, tasker.TaskFilter{State: st})
		if err != nil {
			return err
		}
		counts := make(map[taskKey]int64)
		for _, t := range ts {
			counts[taskKey{t.Namespace, t.Name}]++
		}
		for k, n := range counts {
			o.ObserveInt64(g, n, metric.WithAttributes(AttrNamespace.String(k.namespace),
				AttrTemplate.String(k.name), AttrState.String(string(st))))
		}
	}
	return nil
}

// ObserveCommit records one SQLite transaction of requests write requests
// that took took: pass it as sqlite.Options.OnCommit.
func (t *Telemetry) ObserveCommit(requests int, took time.Duration) {
	ctx := context.Background()
	t.inst.commitBatch.Record(ctx, int64(requests))
	t.inst.commitDur.Record(ctx, took.Seconds())
}

// handle records the metrics of ev and ends the span of a task that ended.
func (t *Telemetry) handle(ev tasker.Event) {
	ctx := context.Background()
	tmpl := []attribute.KeyValue{AttrNamespace.String(ev.Namespace), AttrTemplate.String(ev.Name)}
	switch ev.Kind {
	case tasker.EventTaskCompleted, tasker.EventTaskFailed, tasker.EventTaskCancelled:
		t.inst.tasksEnded.Add(ctx, 1, metric.WithAttributes(append(tmpl, AttrState.String(taskState(ev.Kind)))...))
		t.endTask(ev)
		return
	}
	if ev.Step == "" {
		return
	}
	attrs := metric.WithAttributes(append(tmpl, AttrStep.String(ev.Step))...)
	var outcome string
	switch ev.Kind {
	case tasker.EventStepStarted:
		t.inst.started.Add(ctx, 1, attrs)
	case tasker.EventStepCompleted:
		t.inst.completed.Add(ctx, 1, attrs)
		outcome = "completed"
	case tasker.EventStepRetrying:
		t.inst.retried.Add(ctx, 1, attrs)
		outcome = "retrying"
	case tasker.EventStepFailed:
		t.inst.failed.Add(ctx, 1, attrs)
		outcome = "failed"
	case tasker.EventStepCancelled:
		outcome = "cancelled"
	}
	if outcome != "" && ev.Duration > 0 {
		t.inst.attemptDur.Record(ctx, ev.Duration.Seconds(), metric.WithAttributes(append(tmpl,
			AttrStep.String(ev.Step), AttrOutcome.String(outcome))...))
	}
}
