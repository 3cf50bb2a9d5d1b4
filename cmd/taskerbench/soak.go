package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
	"github.com/gotasker/tasker/store/sqlite"
)

// soakUsage is the -help text of the soak, after the benchmark's.
const soakUsage = `
Soak (-soak): a long closed loop through one shape (-shape, diamond unless
it names one) on each -store, to see that a long-running process stays
small. -tasks tasks in all (default 1,000,000), -inflight at a time (default
16), with the engine's retention on (-retention on, the default), off, or
both runs in turn; retention keeps at most -keep-tasks finished tasks, none
older than -keep-age, cleaning every -clean-every. One JSON line at every
-report-every tasks done (default a tenth of -tasks), and at the end:
stat ("soak"), store, shape, retention, tasks_done, seconds, tasks_per_sec
(since the last line), heap_mib (runtime.MemStats HeapAlloc after a GC),
rss_mib (Linux; left out elsewhere), stored_tasks (what ListTasks returns,
read after the heap), and for SQLite db_mib and wal_mib (the database file
and its -wal) and max_commit_ms (the longest transaction of the store's
writer since the last line: a purge holds it no longer than that).
`

// soakOptions are the soak's flags.
type soakOptions struct {
	on          bool
	retention   string // on, off or both
	keepTasks   int
	keepAge     time.Duration
	cleanEvery  time.Duration
	reportEvery int
	shapeSet    bool // -shape was given
}

// addSoakFlags defines the soak's flags on fs, into o.
func addSoakFlags(fs *flag.FlagSet, o *soakOptions) {
	fs.BoolVar(&o.on, "soak", false, "run the soak: a long closed loop reporting the heap and the store's size (see above)")
	fs.StringVar(&o.retention, "retention", "on", "soak: the engine's retention on, off, or both (a run each)")
	fs.IntVar(&o.keepTasks, "keep-tasks", 10_000, "soak: Retention.MaxTasks, the finished tasks kept at most")
	fs.DurationVar(&o.keepAge, "keep-age", time.Minute, "soak: Retention.MaxAge, how long a finished task is kept")
	fs.DurationVar(&o.cleanEvery, "clean-every", time.Second, "soak: Retention.Interval")
	fs.IntVar(&o.reportEvery, "report-every", 0, "soak: a line every this many tasks done; 0 means a tenth of -tasks")
}

// soakSpec is one soak run.
type soakSpec struct {
	store       string
	shape       shape
	tasks       int
	inflight    int
	workers     int
	retention   bool
	keepTasks   int
	keepAge     time.Duration
	cleanEvery  time.Duration
	reportEvery int
	timeout     time.Duration
}

// soakLine is one line of the soak's output.
type soakLine struct {
	Stat        string   `json:"stat"` // "soak"
	Store       string   `json:"store"`
	Shape       string   `json:"shape"`
	Retention   bool     `json:"retention"`
	TasksDone   int64    `json:"tasks_done"`
	Seconds     float64  `json:"seconds"`
	TasksPerSec float64  `json:"tasks_per_sec"` // since the last line
	HeapMiB     float64  `json:"heap_mib"`
	RSSMiB      *float64 `json:"rss_mib,omitempty"`
	StoredTasks int      `json:"stored_tasks"`
	DBMiB       *float64 `json:"db_mib,omitempty"`
	WALMiB      *float64 `json:"wal_mib,omitempty"`
	MaxCommitMs *float64 `json:"max_commit_ms,omitempty"`
}

// runSoak makes the soak runs o asks for and writes their lines to stdout.
func runSoak(o options, stdout io.Writer) error {
	specs, err := planSoak(o)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for _, spec := range specs {
		if err := soakOnce(spec, func(l soakLine) error { return enc.Encode(l) }); err != nil {
			return fmt.Errorf("soak %s (retention %v): %w", spec.store, spec.retention, err)
		}
	}
	return nil
}

// planSoak returns the soak runs of o: each store, with retention off then
// on as -retention says.
func planSoak(o options) ([]soakSpec, error) {
	name := "diamond"
	if o.soak.shapeSet {
		if len(o.shapes) != 1 {
			return nil, errors.New("-soak runs one shape: -shape must name one")
		}
		name = o.shapes[0]
	}
	sh, err := newShape(name, o.sizes)
	if err != nil {
		return nil, err
	}
	var modes []bool
	switch o.soak.retention {
	case "on":
		modes = []bool{true}
	case "off":
		modes = []bool{false}
	case "both":
		modes = []bool{false, true}
	default:
		return nil, fmt.Errorf("-retention must be on, off or both, got %q", o.soak.retention)
	}
	spec := soakSpec{shape: sh, tasks: o.tasks, inflight: o.inflight, workers: o.workers,
		keepTasks: o.soak.keepTasks, keepAge: o.soak.keepAge, cleanEvery: o.soak.cleanEvery,
		reportEvery: o.soak.reportEvery, timeout: o.timeout}
	if spec.tasks == 0 {
		spec.tasks = 1_000_000
	}
	if spec.inflight == 0 {
		spec.inflight = 16
	}
	if spec.reportEvery <= 0 {
		spec.reportEvery = max(spec.tasks/10, 1)
	}
	var specs []soakSpec
	for _, st := range o.stores {
		for _, on := range modes {
			spec.store, spec.retention = st, on
			specs = append(specs, spec)
		}
	}
	return specs, nil
}

// soakStore is a fresh store for a soak run, with what the reports read
// of it.
type soakStore struct {
	st      store.Store
	path    string // the SQLite file; "" for memory
	maxTx   atomic.Int64
	cleanup func() error
}

// openSoakStore opens a fresh store of the named kind.
func openSoakStore(kind string) (*soakStore, error) {
	s := &soakStore{}
	opts := &sqlite.Options{OnCommit: func(_ int, took time.Duration) {
		for cur := s.maxTx.Load(); int64(took) > cur && !s.maxTx.CompareAndSwap(cur, int64(took)); cur = s.maxTx.Load() {
		}
	}}
	switch kind {
	case "memory":
		m := memory.New()
		s.st, s.cleanup = m, m.Close
		return s, nil
	case "sqlite":
	case "sqlite-full":
		opts.Synchronous = "FULL"
	default:
		return nil, fmt.Errorf("unknown store %q", kind)
	}
	dir, err := os.MkdirTemp("", "taskerbench-soak-*")
	if err != nil {
		return nil, err
	}
	s.path = filepath.Join(dir, "soak.db")
	st, err := sqlite.Open(s.path, opts)
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	s.st, s.cleanup = st, func() error { return errors.Join(st.Close(), os.RemoveAll(dir)) }
	return s, nil
}

// soakOnce makes one soak run, handing each report to emit.
func soakOnce(spec soakSpec, emit func(soakLine) error) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), spec.timeout)
	defer cancel()
	ss, err := openSoakStore(spec.store)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, ss.cleanup()) }()
	eng, err := startSoakEngine(ctx, ss.st, spec)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopEngine(eng)) }()
	rep := &soakReporter{spec: spec, ss: ss, emit: emit, start: time.Now()}
	rep.last = rep.start
	if err := rep.report(ctx, 0); err != nil {
		return err
	}
	return soakLoop(ctx, eng, spec, rep)
}

// startSoakEngine returns a started engine on st running spec's shape, its
// retention as spec says.
func startSoakEngine(ctx context.Context, st store.Store, spec soakSpec) (*tasker.Engine, error) {
	cfg := &tasker.Config{Workers: spec.workers, Retention: tasker.Retention{Disabled: !spec.retention,
		MaxTasks: spec.keepTasks, MaxAge: spec.keepAge, Interval: spec.cleanEvery}}
	eng, err := tasker.New(st, cfg)
	if err != nil {
		return nil, err
	}
	tmpl, err := spec.shape.template()
	if err != nil {
		return nil, err
	}
	if err := eng.Register(benchCallable, benchHandler("noop", spec.shape, 0)); err != nil {
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

// soakLoop runs spec's closed loop: spec.inflight submitters, each
// submitting its next task once WaitOutcome returned its last (from the
// engine's memory: a store read could find the task purged already, when
// the machine stalls the waiter past the cleaner's Interval), spec.tasks in all;
// every spec.reportEvery tasks done, and at the end, rep reports.
func soakLoop(ctx context.Context, eng *tasker.Engine, spec soakSpec, rep *soakReporter) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req := tasker.SubmitRequest{Namespace: benchNamespace, Name: spec.shape.templateName(), Initiator: "taskerbench"}
	var taken, done atomic.Int64
	reports := make(chan int64, 64)
	var wg sync.WaitGroup
	for range spec.inflight {
		wg.Go(func() {
			for ctx.Err() == nil && taken.Add(1) <= int64(spec.tasks) {
				id, err := eng.Submit(ctx, req)
				if err == nil {
					_, err = eng.WaitOutcome(ctx, id)
				}
				if err != nil {
					cancel(err)
					return
				}
				if n := done.Add(1); n%int64(spec.reportEvery) == 0 && n < int64(spec.tasks) {
					reports <- n
				}
			}
		})
	}
	go func() { wg.Wait(); close(reports) }()
	for n := range reports {
		if err := rep.report(ctx, n); err != nil {
			cancel(err)
		}
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return rep.report(ctx, done.Load())
}

// soakReporter writes a soak run's lines.
type soakReporter struct {
	spec        soakSpec
	ss          *soakStore
	emit        func(soakLine) error
	start, last time.Time
	lastDone    int64
}

// report emits the line of the moment done tasks are done.
func (r *soakReporter) report(ctx context.Context, done int64) error {
	now := time.Now()
	l := soakLine{Stat: "soak", Store: r.spec.store, Shape: r.spec.shape.name, Retention: r.spec.retention,
		TasksDone: done, Seconds: now.Sub(r.start).Seconds()}
	if d := now.Sub(r.last).Seconds(); d > 0 && done > r.lastDone {
		l.TasksPerSec = float64(done-r.lastDone) / d
	}
	r.last, r.lastDone = now, done
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	l.HeapMiB = mib(ms.HeapAlloc)
	l.RSSMiB = rssMiB()
	tasks, err := r.ss.st.ListTasks(ctx, store.Filter{})
	if err != nil {
		return err
	}
	l.StoredTasks = len(tasks)
	if r.ss.path != "" {
		l.DBMiB, l.WALMiB = fileMiB(r.ss.path), fileMiB(r.ss.path+"-wal")
		ms := float64(r.ss.maxTx.Swap(0)) / 1e6
		l.MaxCommitMs = &ms
	}
	return r.emit(l)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// fileMiB returns the size of the file at path, 0 when there is none.
func fileMiB(path string) *float64 {
	var size float64
	if fi, err := os.Stat(path); err == nil {
		size = mib(uint64(fi.Size()))
	}
	return &size
}

// rssMiB returns the process's resident set size from /proc/self/statm,
// or nil where there is none (not Linux).
func rssMiB() *float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return nil
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return nil
	}
	pages, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return nil
	}
	rss := mib(pages * uint64(os.Getpagesize()))
	return &rss
}
