package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/postgres"
	"github.com/gotasker/tasker/store/postgres/pgtest"
)

const diamondYAML = `
name: diamond
namespace_name: bench
version: "1.0.0"
steps:
  - name: a
    handler: {callable: bench.Noop}
  - name: b
    handler: {callable: bench.Noop}
    dependencies: [a]
  - name: c
    handler: {callable: bench.Noop}
    dependencies: [a]
  - name: d
    handler: {callable: bench.Noop}
    dependencies: [b, c]
`

// startDiamonds returns a started engine on st running the diamond
// template with a handler that does nothing.
func startDiamonds(t testing.TB, st *postgres.Store) *tasker.Engine {
	t.Helper()
	eng, err := tasker.New(st, &tasker.Config{Workers: 64})
	if err != nil {
		t.Fatalf("tasker.New: %v", err)
	}
	noop := tasker.HandlerFunc(func(context.Context, *tasker.StepContext) (any, error) { return struct{}{}, nil })
	tmpl, err := tasker.ParseTemplate("diamond.yaml", []byte(diamondYAML))
	if err == nil {
		err = eng.Register("bench.Noop", noop)
	}
	if err == nil {
		err = eng.AddTemplates(tmpl)
	}
	if err == nil {
		err = eng.Start(context.Background())
	}
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	return eng
}

// runDiamonds submits n diamonds from 16 goroutines, waits for each and
// fails t unless every one completed.
func runDiamonds(t testing.TB, eng *tasker.Engine, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range 16 {
		wg.Go(func() {
			for range next {
				id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "bench", Name: "diamond"})
				if err != nil {
					errs <- err
					continue
				}
				if task, err := eng.Wait(ctx, id); err != nil || task.State != "complete" {
					errs <- fmt.Errorf("task %s: %v, state %v", id, err, task)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The engine runs on the store: concurrent diamonds all complete, each
// step durable in PostgreSQL. The rate it logs is a smoke figure, not a
// benchmark (see BenchmarkEngineDiamonds).
func TestEngineDiamonds(t *testing.T) {
	st := open(t, pgtest.Pool(t))
	eng := startDiamonds(t, st)
	defer eng.Stop(context.Background())
	const tasks = 200
	start := time.Now()
	runDiamonds(t, eng, tasks)
	took := time.Since(start)
	t.Logf("%d diamonds (%d steps) in %v: %.0f steps/s", tasks, 4*tasks, took, float64(4*tasks)/took.Seconds())
}

// BenchmarkEngineDiamonds reports the steps per second of concurrent
// diamonds on the server at TASKER_POSTGRES_URL.
func BenchmarkEngineDiamonds(b *testing.B) {
	st := open(b, pgtest.Pool(b))
	eng := startDiamonds(b, st)
	defer eng.Stop(context.Background())
	const tasks = 100
	b.ResetTimer()
	for b.Loop() {
		runDiamonds(b, eng, tasks)
	}
	b.ReportMetric(float64(4*tasks*b.N)/b.Elapsed().Seconds(), "steps/s")
}
