package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/gotasker/tasker/store"
)

// BenchmarkApply measures one Apply of a claim and a completion of a step,
// the engine's hot write, from one goroutine and from many (group commit),
// with each Synchronous setting. req/commit is the mean number of requests
// per transaction.
func BenchmarkApply(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run("sync="+sync+"/serial", func(b *testing.B) {
			benchApply(b, sync, func(next func() error) {
				for range b.N {
					if err := next(); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
		b.Run("sync="+sync+"/parallel", func(b *testing.B) {
			b.SetParallelism(4) // 4 × GOMAXPROCS writers
			benchApply(b, sync, func(next func() error) {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := next(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}

// benchApply creates b.N pending steps, then times run, whose next claims
// and completes the next one.
func benchApply(b *testing.B, sync string, run func(next func() error)) {
	s := benchStore(b, sync)
	type ref struct{ task, step string }
	refs := make([]ref, 0, b.N)
	const perTask = 1000
	for t := 0; len(refs) < b.N; t++ {
		steps := make([]store.Step, min(perTask, b.N-len(refs)))
		id := fmt.Sprint("task-", t)
		for i := range steps {
			steps[i] = store.Step{Name: fmt.Sprint("step-", i), Position: i, State: "pending"}
			refs = append(refs, ref{id, steps[i].Name})
		}
		if _, _, err := s.CreateTask(context.Background(), store.Task{ID: id, State: "running"}, steps); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	result := json.RawMessage(`{"status":"ok","amount":12.5}`)
	next := func() error {
		r := refs[n.Add(1)-1]
		return s.Apply(context.Background(), []store.Change{
			{TaskID: r.task, Step: r.step, From: "pending", To: "in_progress", Attempt: 1},
			{TaskID: r.task, Step: r.step, From: "in_progress", FromAttempt: 1, To: "completed",
				Attempt: 1, Result: result},
		})
	}
	benchRun(b, s, func() { run(next) })
}

// BenchmarkCreateTask measures CreateTask of a task with five steps.
func BenchmarkCreateTask(b *testing.B) {
	for _, mode := range []string{"serial", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			s := benchStore(b, "NORMAL")
			steps := make([]store.Step, 5)
			for i := range steps {
				steps[i] = store.Step{Name: fmt.Sprint("step-", i), Position: i, State: "pending"}
			}
			task := store.Task{Namespace: "bench", Name: "order", State: "pending",
				Context: json.RawMessage(`{"order_id":42}`)}
			create := func() {
				if _, _, err := s.CreateTask(context.Background(), task, steps); err != nil {
					b.Error(err)
				}
			}
			benchRun(b, s, func() {
				if mode == "serial" {
					for range b.N {
						create()
					}
					return
				}
				b.SetParallelism(4)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						create()
					}
				})
			})
		})
	}
}

func benchStore(b *testing.B, sync string) *Store {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), &Options{Synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchRun times run and reports the requests per commit during it.
func benchRun(b *testing.B, s *Store, run func()) {
	commits, requests := s.w.commits.Load(), s.w.requests.Load()
	b.ReportAllocs()
	b.ResetTimer()
	run()
	b.StopTimer()
	if c := s.w.commits.Load() - commits; c > 0 {
		b.ReportMetric(float64(s.w.requests.Load()-requests)/float64(c), "req/commit")
	}
}
