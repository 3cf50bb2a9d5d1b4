package tasker_test

import (
	"context"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/examples/ecommerce/orders"
)

// BenchmarkEcommerce runs the guide's five-step workflow with no-op handlers:
// each iteration submits one task; all are awaited before the timer stops.
// It reports steps/s and tasks/s besides ns/op (per task).
func BenchmarkEcommerce(b *testing.B) {
	noop := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) {
		return map[string]bool{"ok": true}, nil
	})
	handlers := map[string]tasker.StepHandler{}
	for callable := range orderHandlers(orders.Handlers{}) {
		handlers[callable] = noop
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			st := be.open(b)
			eng := startEngine(b, st, handlers, ordersTemplate(b))
			req := orderRequest(guideInput(orders.TokenSuccess))
			ctx := context.Background()
			ids := make([]string, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				id, err := eng.Submit(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				ids = append(ids, id)
			}
			for _, id := range ids {
				task, err := eng.Wait(ctx, id)
				if err != nil || task.State != tasker.TaskComplete {
					b.Fatalf("task %s: %v", id, err)
				}
			}
			b.StopTimer()
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/secs, "tasks/s")
			b.ReportMetric(float64(5*b.N)/secs, "steps/s")
		})
	}
}
