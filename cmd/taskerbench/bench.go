package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/store/sqlite"
)

// storeNames lists the stores in the order "-store all" runs them.
var storeNames = []string{"memory", "sqlite", "sqlite-full"}

// stopTimeout bounds the engine's graceful stop after a run.
const stopTimeout = 30 * time.Second

// heapSampleEvery is how often the peak-heap sampler reads the heap size.
const heapSampleEvery = 5 * time.Millisecond

// runSpec is one run to make: a fresh store and engine, a workload, and what
// to record besides the figures.
type runSpec struct {
	store      string
	shape      shape
	tasks      int
	submitters int // goroutines submitting tasks; 0 means serial
	workers    int // tasker.Config.Workers: 0 means the engine default
	sleep      time.Duration
	timeout    time.Duration // bounds the whole run
	cpuProfile string        // file for a CPU profile of the run; "" for none
}

// sample is what one task's run came to.
type sample struct {
	submitted time.Time // just before Submit was called
	done      time.Time // just after Wait returned
	complete  bool      // the task ended complete, not in error
}

// runOnce makes one run of spec and returns its figures.
func runOnce(spec runSpec) (res result, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), spec.timeout)
	defer cancel()
	tmpl, err := spec.shape.template()
	if err != nil {
		return result{}, err
	}
	st, closeStore, err := openStore(spec.store)
	if err != nil {
		return result{}, err
	}
	defer func() { err = errors.Join(err, closeStore()) }()
	eng, err := startEngine(ctx, st, spec, tmpl)
	if err != nil {
		return result{}, err
	}
	defer func() { err = errors.Join(err, stopEngine(eng)) }()
	return measure(ctx, eng, spec)
}

// openStore opens a fresh store of the named kind and returns it with the
// function that closes it and removes its files.
func openStore(kind string) (store.Store, func() error, error) {
	var opts *sqlite.Options
	switch kind {
	case "memory":
		st := memory.New()
		return st, st.Close, nil
	case "sqlite":
	case "sqlite-full":
		opts = &sqlite.Options{Synchronous: "FULL"}
	default:
		return nil, nil, fmt.Errorf("unknown store %q", kind)
	}
	dir, err := os.MkdirTemp("", "taskerbench-*")
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlite.Open(filepath.Join(dir, "bench.db"), opts)
	if err != nil {
		return nil, nil, errors.Join(err, os.RemoveAll(dir))
	}
	return st, func() error { return errors.Join(st.Close(), os.RemoveAll(dir)) }, nil
}

// startEngine returns a started engine on st that runs tmpl with the bench
// handler.
func startEngine(ctx context.Context, st store.Store, spec runSpec, tmpl *tasker.Template) (*tasker.Engine, error) {
	eng, err := tasker.New(st, &tasker.Config{Workers: spec.workers})
	if err != nil {
		return nil, err
	}
	if err := eng.Register(benchCallable, benchHandler(spec.sleep)); err != nil {
		return nil, err
	}
	if err := eng.AddTemplates(tmpl); err != nil {
		return nil, err
	}
	if err := eng.Start(ctx); err != nil {
		return nil, err
	}
	return eng, nil
}

// stopEngine stops eng gracefully, within stopTimeout.
func stopEngine(eng *tasker.Engine) error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	return eng.Stop(ctx)
}

// benchHandler returns the handler of every step: it returns {} at once, or
// after sleep unless its context ends first.
func benchHandler(sleep time.Duration) tasker.HandlerFunc {
	var result any = json.RawMessage(`{}`) // boxed once, not per call
	if sleep <= 0 {
		return func(context.Context, *tasker.StepContext) (any, error) { return result, nil }
	}
	return func(ctx context.Context, _ *tasker.StepContext) (any, error) {
		t := time.NewTimer(sleep)
		defer t.Stop()
		select {
		case <-t.C:
			return result, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// measure drives spec's tasks through eng and returns the figures: times
// from the samples, allocations from runtime.MemStats, the peak heap from a
// sampler running meanwhile.
func measure(ctx context.Context, eng *tasker.Engine, spec runSpec) (result, error) {
	runtime.GC() // so that the previous run's garbage is not counted
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	heap := startHeapSampler(heapSampleEvery)
	stopProfile, err := startCPUProfile(spec.cpuProfile)
	if err != nil {
		heap.stop()
		return result{}, err
	}
	samples, err := drive(ctx, eng, spec)
	err = errors.Join(err, stopProfile())
	peak := heap.stop()
	runtime.ReadMemStats(&after)
	if err != nil {
		return result{}, err
	}
	return summarize(spec, samples, after.Mallocs-before.Mallocs, peak), nil
}

// startCPUProfile starts a CPU profile into file, if file is not "", and
// returns the function that stops it and closes the file.
func startCPUProfile(file string) (func() error, error) {
	if file == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return func() error { pprof.StopCPUProfile(); return f.Close() }, nil
}

// drive submits spec's tasks and waits for each: serially, or from
// spec.submitters goroutines with one waiting goroutine per task.
func drive(ctx context.Context, eng *tasker.Engine, spec runSpec) ([]sample, error) {
	req := tasker.SubmitRequest{Namespace: benchNamespace, Name: spec.shape.templateName(),
		Initiator: "taskerbench", SourceSystem: "taskerbench"}
	samples := make([]sample, spec.tasks)
	if spec.submitters == 0 {
		return samples, driveSerial(ctx, eng, req, samples)
	}
	return samples, driveConcurrent(ctx, eng, req, samples, spec.submitters)
}

// driveSerial runs one task at a time: each is submitted once the previous
// one has completed.
func driveSerial(ctx context.Context, eng *tasker.Engine, req tasker.SubmitRequest, samples []sample) error {
	for i := range samples {
		s := &samples[i]
		s.submitted = time.Now()
		id, err := eng.Submit(ctx, req)
		if err != nil {
			return fmt.Errorf("submit: %w", err)
		}
		if err := await(ctx, eng, id, s); err != nil {
			return err
		}
	}
	return nil
}

// driveConcurrent submits the tasks from submitters goroutines, each task
// awaited by a goroutine of its own, and returns the first error.
func driveConcurrent(ctx context.Context, eng *tasker.Engine, req tasker.SubmitRequest, samples []sample, submitters int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next             atomic.Int64
		subs, awaitsDone sync.WaitGroup
	)
	for range min(submitters, len(samples)) {
		subs.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(samples) {
					return
				}
				s := &samples[i]
				s.submitted = time.Now()
				id, err := eng.Submit(ctx, req)
				if err != nil {
					cancel(fmt.Errorf("submit: %w", err))
					return
				}
				awaitsDone.Go(func() {
					if err := await(ctx, eng, id, s); err != nil {
						cancel(err)
					}
				})
			}
		})
	}
	subs.Wait()
	awaitsDone.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// await waits for task id with Engine.Wait, which also reads the task back
// from the store, and records when it returned and how the task ended.
func await(ctx context.Context, eng *tasker.Engine, id string, s *sample) error {
	task, err := eng.Wait(ctx, id)
	s.done = time.Now()
	if err != nil {
		return fmt.Errorf("wait for task %s: %w", id, err)
	}
	s.complete = task.State == tasker.TaskComplete
	return nil
}
