package taskerotel_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/taskerotel"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Example instruments an engine: the task's span continues the trace of
// the context it was submitted with, and each attempt has a child span.
func Example() {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tel, err := taskerotel.New(taskerotel.Options{TracerProvider: tp, MeterProvider: mp,
		Propagator: propagation.TraceContext{}})
	if err != nil {
		panic(err)
	}
	eng, _ := tasker.New(memory.New(), tel.Configure(&tasker.Config{}))
	ok := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) { return "ok", nil })
	_ = eng.Register("test.charge", ok)
	_ = eng.Register("test.ship", ok)
	tmpl, _ := tasker.ParseTemplate("order.yaml", []byte(orderYAML))
	_ = eng.AddTemplates(tmpl)
	_ = tel.Observe(eng)
	_ = eng.Start(context.Background())

	ctx, checkout := tp.Tracer("shop").Start(context.Background(), "checkout")
	id, _ := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "shop", Name: "order"})
	checkout.End()
	task, _ := eng.Wait(context.Background(), id)
	_ = eng.Stop(context.Background())
	_ = tel.Close() // every event handled, every span ended

	fmt.Println("task:", task.State)
	var names []string
	for _, s := range spans.GetSpans() {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Println(n)
	}
	// Output:
	// task: complete
	// checkout
	// tasker.step charge
	// tasker.step ship
	// tasker.task shop/order
}
