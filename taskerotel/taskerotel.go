// Package taskerotel instruments a tasker engine with OpenTelemetry: a span
// per task and a child span per step attempt, continuing the trace of the
// context the task was submitted with (after a restart too, the trace
// context being stored with the task), and metrics of steps, attempts,
// tasks, the engine's queue and the SQLite store's group commit.
//
// It is a separate package so that the engine does not depend on
// OpenTelemetry: it plugs into the engine's Config.CaptureContext and
// Config.Attempt hooks and reads its lifecycle events (Engine.Subscribe).
//
// A task's span is started by its first attempt in the process and ended
// by its end event. The events of a subscription are dropped when its
// buffer is full, and those of a task another engine of a shared store
// took over go to that engine's subscribers: so that the spans whose end
// event never comes neither stay open nor pile up, a goroutine of the
// Telemetry's asks the observed engines, every Options.ReconcileInterval,
// about the task spans open that long, and about all of them once events
// were lost, and ends those of the tasks that ended, or that no engine
// knows any more; and at most Options.MaxTaskSpans are kept open, the
// oldest ended to make room. Spans so ended carry tasker.unobserved
// (AttrUnobserved).
//
//	tel, _ := taskerotel.New(taskerotel.Options{TracerProvider: tp, MeterProvider: mp})
//	cfg := tel.Configure(&tasker.Config{})
//	eng, _ := tasker.New(st, cfg)
//	tel.Observe(eng)
//	defer tel.Close()
package taskerotel

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/gotasker/tasker"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/gotasker/tasker/taskerotel"

// Options configures New. Nil fields mean the global ones, as otelhttp
// does: otel.GetTracerProvider, otel.GetMeterProvider and
// otel.GetTextMapPropagator (which is a no-op until
// otel.SetTextMapPropagator is called: pass propagation.TraceContext{} to
// store W3C trace context with each task whatever the globals are).
type Options struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator
	// EventBuffer is the buffer of the engine subscription the metrics and
	// the task spans are derived from; 0 means tasker.DefaultEventBuffer.
	// Events lost to a full buffer are counted (tasker.telemetry.events_lost).
	EventBuffer int
	// MaxTaskSpans bounds the task spans kept open at once, so that what
	// the instrumentation holds stays bounded whatever events are lost:
	// starting one more ends the oldest open one, with attribute
	// tasker.unobserved = "evicted" (UnobservedEvicted). 0 means
	// DefaultMaxTaskSpans; a negative value, no bound.
	MaxTaskSpans int
	// ReconcileInterval is how often the open task spans are checked
	// against the observed engines (Engine.Get), to end those whose task's
	// end event never came: lost to a full buffer, or sent by another
	// engine of a shared store that took the task over. A pass looks at
	// the spans open for one interval at least, and, after events were
	// lost, at every span open then; it ends the span of a task that ended
	// with its end (state, status, time) and tasker.unobserved =
	// "reconciled", and that of a task no observed engine knows any more
	// (deleted by retention) now, with tasker.unobserved = "not_found".
	// 0 means DefaultReconcileInterval; a negative value, no checks.
	ReconcileInterval time.Duration
	// ReconcileBatch is the most open task spans one pass asks the engines
	// about (one Engine.Get each, with each observed engine until one knows
	// the task); the next pass goes on from there. Not positive means
	// DefaultReconcileBatch.
	ReconcileBatch int
}

// DefaultMaxTaskSpans is Options.MaxTaskSpans when it is 0: far more tasks
// than an engine runs at once; at about 1 KB an open task span (the SDK's,
// with taskerotel's attributes), some 100 MB at the cap.
const DefaultMaxTaskSpans = 100_000

// Telemetry instruments engines. Create it with New, let it Configure each
// engine's Config before tasker.New, then Observe the engine; one
// Telemetry may observe several engines of a process (their task spans
// share one table and one reconciler). It is safe for concurrent use.
type Telemetry struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	buffer     int
	maxSpans   int              // 0: no bound
	every      time.Duration    // between reconciliation passes; not positive: none
	batch      int              // spans per pass, at most
	ticks      <-chan time.Time // the reconciler's passes, for tests; nil: every t.every
	inst       instruments

	mu       sync.Mutex
	tasks    spanTable   // the open task spans
	observed []*observed // the engines whose subscriptions are open
	regs     []metric.Registration
	stopRec  context.CancelFunc // stops the reconciler; nil when it does not run
	wg       sync.WaitGroup     // the event loops and the reconciler
}

// New returns the instrumentation, its instruments created on the meter
// provider's meter; the error is the meter's.
func New(opts Options) (*Telemetry, error) {
	tp, mp, prop := opts.TracerProvider, opts.MeterProvider, opts.Propagator
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if prop == nil {
		prop = otel.GetTextMapPropagator()
	}
	t := &Telemetry{tracer: tp.Tracer(ScopeName), propagator: prop, buffer: opts.EventBuffer,
		maxSpans: opts.MaxTaskSpans, every: cmp.Or(opts.ReconcileInterval, DefaultReconcileInterval),
		batch: opts.ReconcileBatch, tasks: newSpanTable()}
	if t.batch <= 0 {
		t.batch = DefaultReconcileBatch
	}
	switch {
	case t.maxSpans == 0:
		t.maxSpans = DefaultMaxTaskSpans
	case t.maxSpans < 0:
		t.maxSpans = 0
	}
	var err error
	if t.inst, err = newInstruments(mp.Meter(ScopeName)); err != nil {
		return nil, err
	}
	return t, nil
}

// Configure sets cfg's CaptureContext and Attempt hooks to t's and returns
// cfg; a nil cfg is a new Config. Hooks cfg had already are replaced.
func (t *Telemetry) Configure(cfg *tasker.Config) *tasker.Config {
	if cfg == nil {
		cfg = &tasker.Config{}
	}
	cfg.CaptureContext = t.capture
	cfg.Attempt = t.attempt
	return cfg
}

// Observe subscribes to eng's events, from which t derives its metrics and
// ends its task spans, and registers the gauges read from eng (queue depth,
// unfinished tasks by state). Call it once per engine, before Start so that
// no event is missed; the subscription ends when eng stops or t is closed.
// While t observes an engine, a goroutine of t's reconciles the open task
// spans with the observed engines (Options.ReconcileInterval); it ends
// with the last subscription, or with Close.
func (t *Telemetry) Observe(eng *tasker.Engine) error {
	reg, err := t.inst.observeEngine(eng)
	if err != nil {
		return err
	}
	o := &observed{eng: eng, sub: eng.Subscribe(t.buffer)}
	t.mu.Lock()
	t.observed = append(t.observed, o)
	t.regs = append(t.regs, reg)
	t.wg.Add(1)
	t.startReconciler()
	t.mu.Unlock()
	go t.loop(o)
	return nil
}

// Close closes the subscriptions Observe took, waits for their events to be
// handled and for the reconciler to stop, ends the task spans still open
// (their tasks interrupted, with attribute tasker.interrupted) and
// unregisters the gauges.
func (t *Telemetry) Close() error {
	t.mu.Lock()
	obs, regs := slices.Clone(t.observed), t.regs // the loops delete from t.observed in place
	t.regs = nil
	t.stopReconciler()
	t.mu.Unlock()
	for _, o := range obs {
		o.sub.Close()
	}
	t.wg.Wait()
	t.endOpenTasks()
	var errs []error
	for _, r := range regs {
		errs = append(errs, r.Unregister())
	}
	return errors.Join(errs...)
}

// loop handles the events of o's subscription until it is closed, then
// forgets o, stopping the reconciler when no engine is left to ask.
func (t *Telemetry) loop(o *observed) {
	defer t.wg.Done()
	for ev := range o.sub.C() {
		if ev.Lost > 0 {
			t.countLost(o)
		}
		t.handle(ev)
	}
	t.countLost(o) // losses no event came to tell of
	t.mu.Lock()
	t.observed = slices.DeleteFunc(t.observed, func(x *observed) bool { return x == o })
	if len(t.observed) == 0 {
		t.stopReconciler()
	}
	t.mu.Unlock()
}
