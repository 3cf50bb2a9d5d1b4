package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
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
	submitters int           // goroutines submitting tasks; 0 means serial
	workers    int           // tasker.Config.Workers: 0 means the engine default
	inflight   int           // closed loop: tasks in flight; 0 means open loop (submitters)
	duration   time.Duration // closed loop: how long to run; 0 means run tasks
	body       string        // the steps' body: see bodyNames
	wait       string        // "outcome" (Engine.WaitOutcome) or "full" (Engine.Wait)
	sleep      time.Duration
	timeout    time.Duration // bounds the whole run
	cpuProfile string        // file for a CPU profile of the run; "" for none
	procs      int           // engine processes (-procs, see procs.go); 0 runs the engine in this one
}

// runOnce makes one run of spec and returns its figures.
func runOnce(spec runSpec) (res result, err error) {
	if spec.procs > 0 {
		return runProcs(spec)
	}
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
	return measure(ctx, eng, st, spec)
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
	case postgresStore:
		return openPostgres()
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
	if err := eng.Register(benchCallable, benchHandler(spec.body, spec.shape, spec.sleep)); err != nil {
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

// measure drives spec's tasks through eng, on st, and returns the figures:
// times from the samples, allocations from runtime.MemStats, the peak heap
// from a sampler running meanwhile, CPU time and the store's commits over
// the drive.
func measure(ctx context.Context, eng *tasker.Engine, st store.Store, spec runSpec) (result, error) {
	runtime.GC() // so that the previous run's garbage is not counted
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	heap := startHeapSampler(heapSampleEvery)
	stopProfile, err := startCPUProfile(spec.cpuProfile)
	if err != nil {
		heap.stop()
		return result{}, err
	}
	d := &driver{eng: eng, full: spec.wait == "full", req: tasker.SubmitRequest{Namespace: benchNamespace,
		Name: spec.shape.templateName(), Initiator: "taskerbench", SourceSystem: "taskerbench"}}
	m := startMeter(st)
	samples, err := d.drive(ctx, spec)
	u := m.stop()
	err = errors.Join(err, stopProfile())
	u.peakHeap = heap.stop()
	runtime.ReadMemStats(&after)
	if err != nil {
		return result{}, err
	}
	u.mallocs = after.Mallocs - before.Mallocs
	u.maxInflight = int(d.peak.Load())
	return summarize(spec, samples, u), nil
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
