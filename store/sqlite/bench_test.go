package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	refs := benchSteps(b, s, b.N, 1000)
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

// benchRun times run and reports the requests and WAL pages per commit
// during it, and the process's CPU time per op where the platform tells
// it: on a shared machine it varies less than the wall time.
func benchRun(b *testing.B, s *Store, run func()) {
	commits, requests, frames := s.w.commits.Load(), s.w.requests.Load(), s.w.frames.Load()
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	run()
	b.StopTimer()
	if cpu > 0 {
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	}
	if c := s.w.commits.Load() - commits; c > 0 {
		b.ReportMetric(float64(s.w.requests.Load()-requests)/float64(c), "req/commit")
		b.ReportMetric(float64(s.w.frames.Load()-frames)/float64(c), "pages/commit")
	}
}

// stepRef names a step.
type stepRef struct{ task, step string }

// benchSteps creates n pending steps in tasks of perTask steps each. Task
// IDs sort in creation order, as the engine's (UUIDv7) do: random IDs
// would scatter each batch's writes over the B-trees.
func benchSteps(b *testing.B, s *Store, n, perTask int) []stepRef {
	refs := make([]stepRef, 0, n)
	for t := 0; len(refs) < n; t++ {
		steps := make([]store.Step, min(perTask, n-len(refs)))
		id := fmt.Sprintf("task-%09d", t)
		for i := range steps {
			steps[i] = store.Step{Name: fmt.Sprint("step-", i), Position: i, State: "pending"}
			refs = append(refs, stepRef{id, steps[i].Name})
		}
		if _, _, err := s.CreateTask(context.Background(), store.Task{ID: id, State: "running"}, steps); err != nil {
			b.Fatal(err)
		}
	}
	return refs
}

// BenchmarkEngine mimics the engine's write load: 64 workers, each claiming
// a step of its own with one Apply of one change, then completing it with
// another, with each Synchronous setting. Steps belong to tasks of five. An
// op is one step: two Applies. ns/change is the wall time per change
// (ns/op / 2), req/commit the mean number of requests per transaction.
func BenchmarkEngine(b *testing.B) {
	const workers = 64 // tasker.DefaultWorkers
	result := json.RawMessage(`{"status":"ok","amount":12.5}`)
	for _, mode := range []string{"NORMAL", "FULL"} {
		b.Run("sync="+mode, func(b *testing.B) {
			s := benchStore(b, mode)
			refs := benchSteps(b, s, b.N, 5)
			ctx := context.Background()
			step := func(r stepRef) error {
				claim := store.Change{TaskID: r.task, Step: r.step, From: "pending", To: "in_progress", Attempt: 1}
				if err := s.Apply(ctx, []store.Change{claim}); err != nil {
					return err
				}
				return s.Apply(ctx, []store.Change{{TaskID: r.task, Step: r.step, From: "in_progress",
					FromAttempt: 1, To: "completed", Attempt: 1, Result: result}})
			}
			var next atomic.Int64
			var elapsed time.Duration
			benchRun(b, s, func() {
				start := time.Now()
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						for i := next.Add(1) - 1; i < int64(len(refs)); i = next.Add(1) - 1 {
							if err := step(refs[i]); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				elapsed = time.Since(start)
			})
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(2*b.N), "ns/change")
		})
	}
}

// BenchmarkRead measures reading back a finished five-step task, as
// Engine.Wait does: its record, its steps and its twelve transitions.
func BenchmarkRead(b *testing.B) {
	s := benchStore(b, "NORMAL")
	ctx := context.Background()
	const tasks = 1000
	names := []string{"a", "b", "c", "d", "e"}
	for t := range tasks {
		id := fmt.Sprint("task-", t)
		steps := make([]store.Step, len(names))
		for i, name := range names {
			steps[i] = store.Step{Name: name, Position: i, State: "pending"}
		}
		if _, _, err := s.CreateTask(ctx, store.Task{ID: id, State: "pending"}, steps); err != nil {
			b.Fatal(err)
		}
		changes := []store.Change{{TaskID: id, From: "pending", To: "in_progress"}}
		for _, name := range names {
			changes = append(changes,
				store.Change{TaskID: id, Step: name, From: "pending", To: "in_progress", Attempt: 1},
				store.Change{TaskID: id, Step: name, From: "in_progress", FromAttempt: 1, To: "completed",
					Attempt: 1, Result: json.RawMessage(`{"ok":true}`)})
		}
		changes = append(changes, store.Change{TaskID: id, From: "in_progress", To: "completed"})
		if err := s.Apply(ctx, changes); err != nil {
			b.Fatal(err)
		}
	}
	for _, what := range []string{"Task", "Steps", "Transitions"} {
		b.Run(what, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				id := fmt.Sprint("task-", i%tasks)
				var err error
				switch what {
				case "Task":
					_, err = s.Task(ctx, id)
				case "Steps":
					_, err = s.Steps(ctx, id)
				case "Transitions":
					_, err = s.Transitions(ctx, id)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDiamond runs the engine's writes for tasks of the guide's
// diamond (diamondWrites: a CreateTask and seven Applies, one after the
// other) from 1, 10 and 50 goroutines, each running one task at a time,
// as the engine's closed loop with that many tasks in flight does without
// the engine's own costs. An op is one step; ns/op is the wall time per
// step of the whole run: what the store alone allows the engine.
func BenchmarkDiamond(b *testing.B) {
	for _, mode := range []string{"NORMAL", "FULL"} {
		for _, inflight := range []int{1, 10, 50} {
			b.Run(fmt.Sprintf("sync=%s/inflight=%d", mode, inflight), func(b *testing.B) {
				benchDiamond(b, mode, inflight)
			})
		}
	}
}

func benchDiamond(b *testing.B, mode string, inflight int) {
	s := benchStore(b, mode)
	tasks := (b.N + len(diamondSteps) - 1) / len(diamondSteps)
	var next atomic.Int64
	ctx := context.Background()
	benchRun(b, s, func() {
		var wg sync.WaitGroup
		for range inflight {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < int64(tasks); i = next.Add(1) - 1 {
					if err := runDiamond(ctx, s, fmt.Sprintf("task-%09d", i)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}
