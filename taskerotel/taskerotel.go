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
//	tel, _ := taskerotel.New(taskerotel.Options{TracerProvider: tp, MeterProvider: mp})
//	cfg := tel.Configure(&tasker.Config{})
//	eng, _ := tasker.New(st, cfg)
//	tel.Observe(eng)
//	defer tel.Close()
package taskerotel

import (
	"errors"
	"sync"

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
}

// DefaultMaxTaskSpans is Options.MaxTaskSpans when it is 0: far more tasks
// than an engine runs at once, its spans a few hundred megabytes at most.
const DefaultMaxTaskSpans = 100_000

// Telemetry instruments one engine. Create it with New, let it Configure
// the engine's Config before tasker.New, then Observe the engine. It is
// safe for concurrent use.
type Telemetry struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	buffer     int
	maxSpans   int // 0: no bound
	inst       instruments

	mu    sync.Mutex
	tasks spanTable // the open task spans
	subs  []*tasker.Subscription
	regs  []metric.Registration
	wg    sync.WaitGroup // the event loops
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
		maxSpans: opts.MaxTaskSpans, tasks: newSpanTable()}
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
func (t *Telemetry) Observe(eng *tasker.Engine) error {
	reg, err := t.inst.observeEngine(eng)
	if err != nil {
		return err
	}
	sub := eng.Subscribe(t.buffer)
	t.mu.Lock()
	t.subs = append(t.subs, sub)
	t.regs = append(t.regs, reg)
	t.mu.Unlock()
	t.wg.Add(1)
	go t.loop(sub)
	return nil
}

// Close closes the subscriptions Observe took, waits for their events to be
// handled, ends the task spans still open (their tasks interrupted, with
// attribute tasker.task.interrupted) and unregisters the gauges.
func (t *Telemetry) Close() error {
	t.mu.Lock()
	subs, regs := t.subs, t.regs
	t.subs, t.regs = nil, nil
	t.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
	t.wg.Wait()
	t.endOpenTasks()
	var errs []error
	for _, r := range regs {
		errs = append(errs, r.Unregister())
	}
	return errors.Join(errs...)
}

// loop handles the events of sub until it is closed.
func (t *Telemetry) loop(sub *tasker.Subscription) {
	defer t.wg.Done()
	for ev := range sub.C() {
		t.handle(ev)
	}
}
