package tasker_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/orders"
	"github.com/gotasker/tasker/store/memory"
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

// BenchmarkParseTemplate loads the guide's template from YAML: parse,
// validate the DAG, compile the input schema.
func BenchmarkParseTemplate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tasker.ParseTemplate("orders.yaml", orders.TemplateYAML); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmit measures Submit alone (input validation and the atomic
// write of the task and its five steps) on an engine that is not started,
// so nothing runs.
func BenchmarkSubmit(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			eng, err := tasker.New(be.open(b), nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := eng.AddTemplates(ordersTemplate(b)); err != nil {
				b.Fatal(err)
			}
			req := orderRequest(guideInput(orders.TokenSuccess))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := eng.Submit(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDispatch measures the engine's cost per step, from readiness to
// the recorded outcome (claim, handler call, completion, readiness of the
// next): each iteration runs one step of a 1 → 1000 → 1 task of no-op
// handlers on the memory store.
func BenchmarkDispatch(b *testing.B) {
	const width = 1000
	dispatchWide(b, startEngine(b, memory.New(), map[string]tasker.StepHandler{"bench.noop": noop}, mustParseTB(b, wideYAML(width))), width)
}

// dispatchWide runs b.N steps as tasks of wideYAML(width) on eng, one
// task at a time, timing only them.
func dispatchWide(b *testing.B, eng *tasker.Engine, width int) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += width + 2 {
		id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "perf", Name: "wide"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := eng.Wait(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHeap reports the heap a task holds while pending (submitted to an
// engine that has not started, on the memory store: the store's records,
// since the engine keeps nothing for it yet) and what stays in the heap per
// finished task (the memory store keeps every task; the engine keeps
// nothing, see TestFinishedTasksAreReleased). Each iteration is one
// five-step diamond.
func BenchmarkHeap(b *testing.B) {
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	ctx := context.Background()
	tmpl := mustParseTB(b, wideYAML(3)) // start → 3 → finish: 5 steps
	b.Run("pending", func(b *testing.B) {
		eng, _ := tasker.New(memory.New(), nil)
		eng.AddTemplates(tmpl)
		before := heap()
		for b.Loop() {
			if _, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "perf", Name: "wide"}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(heap()-before)/float64(b.N*5), "B/pending-step")
		runtime.KeepAlive(eng) // the tasks live in its store
	})
	b.Run("finished", func(b *testing.B) {
		eng := startEngine(b, memory.New(), map[string]tasker.StepHandler{"bench.noop": noop}, tmpl)
		before := heap()
		for b.Loop() {
			id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "perf", Name: "wide"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := eng.Wait(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(heap()-before)/float64(b.N), "B/finished-task")
	})
}
