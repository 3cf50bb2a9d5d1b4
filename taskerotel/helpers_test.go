package taskerotel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/taskerotel"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// orderYAML: charge, then ship; charge fails once (retryable), ship fails
// for good when the input says so.
const orderYAML = `
name: order
namespace_name: shop
version: "1.2.0"
steps:
  - name: charge
    handler: {callable: test.charge}
    retry: {max_attempts: 3, backoff: constant, backoff_base_ms: 1}
  - name: ship
    handler: {callable: test.ship}
    dependencies: [charge]
`

// rig is an instrumented engine with an in-memory span exporter and a
// manual metric reader.
type rig struct {
	eng    *tasker.Engine
	tel    *taskerotel.Telemetry
	spans  *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

// newRig starts an engine on st with handlers, instrumented; its cleanup
// stops the engine and closes the instrumentation. With start false the
// engine is left unstarted.
func newRig(t *testing.T, st store.Store, handlers map[string]tasker.StepHandler, start bool) *rig {
	t.Helper()
	r := newTelemetry(t)
	r.engine(t, st, handlers, start)
	return r
}

// newTelemetry returns a rig with its instrumentation, and no engine yet.
func newTelemetry(t *testing.T) *rig {
	t.Helper()
	return newTelemetryWith(t, taskerotel.Options{})
}

// newTelemetryWith is newTelemetry with opts, whose providers and
// propagator it sets, and with procs, span processors called before the
// exporter's.
func newTelemetryWith(t *testing.T, opts taskerotel.Options, procs ...sdktrace.SpanProcessor) *rig {
	t.Helper()
	r := &rig{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	var tpOpts []sdktrace.TracerProviderOption
	for _, p := range procs {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(p))
	}
	r.tp = sdktrace.NewTracerProvider(append(tpOpts, sdktrace.WithSyncer(r.spans))...)
	r.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	opts.TracerProvider, opts.MeterProvider, opts.Propagator = r.tp, r.mp, propagation.TraceContext{}
	var err error
	if r.tel, err = taskerotel.New(opts); err != nil {
		t.Fatal(err)
	}
	return r
}

// onEnd is a span processor that calls itself with every span that ends,
// on the goroutine that ends it, before the exporter sees it.
type onEnd func(sdktrace.ReadOnlySpan)

func (f onEnd) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (f onEnd) OnEnd(s sdktrace.ReadOnlySpan)                   { f(s) }
func (onEnd) Shutdown(context.Context) error                    { return nil }
func (onEnd) ForceFlush(context.Context) error                  { return nil }

// engine creates r's engine on st, observed by r's instrumentation.
func (r *rig) engine(t *testing.T, st store.Store, handlers map[string]tasker.StepHandler, start bool) {
	t.Helper()
	cfg := r.tel.Configure(&tasker.Config{Workers: 4, RetryDelay: func(time.Duration) time.Duration { return 0 }})
	var err error
	if r.eng, err = tasker.New(st, cfg); err != nil {
		t.Fatal(err)
	}
	for name, h := range handlers {
		if err := r.eng.Register(name, h); err != nil {
			t.Fatal(err)
		}
	}
	tmpl, err := tasker.ParseTemplate("order.yaml", []byte(orderYAML))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.eng.AddTemplates(tmpl); err != nil {
		t.Fatal(err)
	}
	if err := r.tel.Observe(r.eng); err != nil {
		t.Fatal(err)
	}
	if start {
		if err := r.eng.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { r.stop(t) })
}

// stop stops the engine and closes the instrumentation, once every event
// is handled: every span the engine's tasks made is ended then.
func (r *rig) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.eng.Stop(ctx); err != nil {
		t.Error(err)
	}
	if err := r.tel.Close(); err != nil {
		t.Error(err)
	}
}

// wait waits for task id to end.
func (r *rig) wait(t *testing.T, id string) *tasker.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	task, err := r.eng.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// flaky fails its first attempt with a retryable StepError, then succeeds.
func flaky() tasker.HandlerFunc {
	return func(_ context.Context, sc *tasker.StepContext) (any, error) {
		if sc.Attempt() == 1 {
			return nil, &tasker.StepError{Message: "card network down", Type: tasker.ErrorRetryable,
				Code: "NETWORK", Retryable: true}
		}
		return map[string]string{"charge": "ok"}, nil
	}
}

var errNoStock = errors.New("no stock")

// failing fails for good.
func failing() tasker.HandlerFunc {
	return func(context.Context, *tasker.StepContext) (any, error) {
		return nil, &tasker.StepError{Message: errNoStock.Error(), Type: tasker.ErrorValidation, Code: "NO_STOCK"}
	}
}
