package taskerotel_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/taskerotel"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// wideTemplate is 1 step → 100 in parallel → 1.
func wideTemplate(b *testing.B) *tasker.Template {
	var y strings.Builder
	y.WriteString("name: wide\nnamespace_name: bench\nversion: \"1.0.0\"\nsteps:\n  - {name: start, handler: {callable: noop}}\n")
	deps := make([]string, 100)
	for i := range deps {
		deps[i] = fmt.Sprint("s", i)
		fmt.Fprintf(&y, "  - {name: s%d, handler: {callable: noop}, dependencies: [start]}\n", i)
	}
	fmt.Fprintf(&y, "  - {name: finish, handler: {callable: noop}, dependencies: [%s]}\n", strings.Join(deps, ", "))
	t, err := tasker.ParseTemplate("wide.yaml", []byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// BenchmarkInstrumented states what taskerotel costs: one 102-step task per
// op on the memory store, plain and with traces (every span sampled, kept
// in memory) and metrics.
func BenchmarkInstrumented(b *testing.B) {
	for _, instrumented := range []bool{false, true} {
		b.Run(fmt.Sprint("otel=", instrumented), func(b *testing.B) {
			cfg := &tasker.Config{Workers: 4}
			var tel *taskerotel.Telemetry
			if instrumented {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter()))
				mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
				var err error
				if tel, err = taskerotel.New(taskerotel.Options{TracerProvider: tp, MeterProvider: mp, Propagator: propagation.TraceContext{}}); err != nil {
					b.Fatal(err)
				}
				cfg = tel.Configure(cfg)
			}
			eng, err := tasker.New(memory.New(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			noop := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) { return nil, nil })
			if err := eng.Register("noop", noop); err != nil {
				b.Fatal(err)
			}
			if err := eng.AddTemplates(wideTemplate(b)); err != nil {
				b.Fatal(err)
			}
			if tel != nil {
				if err := tel.Observe(eng); err != nil {
					b.Fatal(err)
				}
			}
			ctx := context.Background()
			if err := eng.Start(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "bench", Name: "wide"})
				if err != nil {
					b.Fatal(err)
				}
				if task, err := eng.Wait(ctx, id); err != nil || task.State != tasker.TaskComplete {
					b.Fatalf("task: %v %v", task, err)
				}
			}
			b.ReportMetric(float64(b.N*102)/b.Elapsed().Seconds(), "steps/s")
			eng.Stop(ctx)
			if tel != nil {
				tel.Close()
			}
		})
	}
}
