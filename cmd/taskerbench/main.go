// Command taskerbench measures the tasker engine: it runs workloads of
// generated DAG shapes on each store and prints one JSON line per run.
//
// Usage:
//
//	go run ./cmd/taskerbench [flags]
//	go run ./cmd/taskerbench -store all -shape all -repeat 3 -median
//	go run ./cmd/taskerbench -shape many -sleep 50ms -workers 200 -tasks 100 -store memory
//	go run ./cmd/taskerbench -store sqlite -shape diamond -inflight 10 -duration 5s -body decode
//
// Run it with -help for the shapes, the flags and the output's fields.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

const usage = `Usage: taskerbench [flags]

Runs workloads on a fresh store and engine per run and prints one JSON object
per line on stdout. Every step's handler runs its -body, then -sleep if any:
  noop     returns {} (the default).
  decode   what an application's step does with its inputs: decodes every
           parent's result into a map, checks it is that parent's (a
           permanent failure if not), and returns a small map.

Shapes, with their default -tasks (about 5,000 to 10,000 steps a run):
  diamond  the guide's 5 steps: a → (b ‖ c) → d → e. 1000 tasks.
  wide     1 step → -width steps in parallel → 1 step. 10 tasks.
  chain    -length steps, each after the one before. 50 tasks.
  tree     a binary fan-out tree: a root, two children per step, down to
           -depth levels below the root (2^(depth+1)-1 steps). Nothing
           converges: the task completes when every leaf has. 50 tasks.
  many     -tasks concurrent diamonds. 1000 tasks.
Every shape but many runs serially by default (-submitters 0): a task is
submitted once the previous one completed, so latency is that of one task
of the shape on an idle engine. many submits from GOMAXPROCS×4 goroutines
and awaits each task in a goroutine of its own; -submitters N does the same
for any shape. This is the open loop: tasks arrive as fast as Submit returns,
however many are in flight.

Closed loop, as applications run: -inflight N starts N submitters, each of
which submits its next task once Wait returned its last, so at most N tasks
are ever in flight (-inflight 1 is the serial workload). It runs -tasks tasks
in all, or with -duration D it submits for D and lets those in flight
finish. -inflight excludes -submitters, and -duration -tasks.

Stores: memory; sqlite (a file in a temporary directory, synchronous=NORMAL,
the default); sqlite-full (Options{Synchronous: "FULL"}). Lists such as
-store memory,sqlite and -shape wide,chain work, and so does all (the local
stores). postgres runs on the server TASKER_POSTGRES_URL names, in a fresh
schema per run, dropped after (a pool of 16 connections per process unless
the URL sets pool_max_conns).

Many engines: -procs N (with -store postgres and the closed loop) runs each
run in N child processes of this one, each an engine on the run's schema
submitting to itself; -inflight and -tasks are totals, split between them
(-duration is each one's). The figures are those of all the processes
together: latencies over every task, first submit to last completion,
allocations and CPU time summed, peak_heap_mib the largest process's.
-procs 0, the default, runs the engine in this process.

Measurement: each task's latency runs from just before Submit to just after
the wait returned: -wait outcome (the default) waits with
Engine.WaitOutcome, which answers from the engine's memory as an
application that wants the results does; -wait full with Engine.Wait,
which also reads the task, its steps and transitions back from the store
(that read is then included). seconds run from the first
submit to the last completion. allocs_per_step is the runtime.MemStats
Mallocs delta over the run divided by steps: it counts everything the
process allocated, this program's submitters and waiters included.
peak_heap_mib is the largest heap size (MemStats.HeapAlloc, via
runtime/metrics) sampled every 5ms during the run, after a GC before it.
max_inflight is the most tasks between Submit and Wait's return at once.
cpu_seconds is the process's CPU time, user and system (getrusage), over
the run; cpu_util is that over the run's wall time × GOMAXPROCS (1 = every
P busy). Both are left out where not measured (not unix).
requests_per_commit is the SQLite store's write requests per transaction
(sqlite.Store.CommitStats); left out for the memory store.

Output fields: stat ("run" or "median"), run, runs, store, shape, width,
length, depth, tasks, steps_per_task, steps, complete, workers, submitters
(0 = serial; N in the closed loop), sleep, body, wait, mode (serial, open or
closed), inflight (0 unless closed), duration (with -duration),
max_inflight, procs (with -procs), seconds, tasks_per_sec, steps_per_sec, p50_us, p99_us,
max_us, allocs_per_step, peak_heap_mib, cpu_seconds, cpu_util,
requests_per_commit, go_version, gomaxprocs, num_cpu. A median line takes
the median of each figure; complete is the least of its runs',
max_inflight the most, and the rest are the first run's.

Flags:
`

// options are the parsed command line.
type options struct {
	stores, shapes []string
	sizes          sizes
	tasks          int // 0: the shape's default
	submitters     int // -1: the shape's default
	inflight       int // closed loop's tasks in flight; 0: open loop
	duration       time.Duration
	body           string
	wait           string
	workers        int
	sleep          time.Duration
	repeat         int
	median         bool
	timeout        time.Duration
	cpuProfile     string
	memProfile     string
	soak           soakOptions // -soak and its flags: soak.go
	procs          int         // -procs: engine processes, children of this one; 0 runs the engine here
}

// errUsage marks a command line the flag package rejected; it has already
// printed the problem and the usage.
var errUsage = errors.New("usage")

func main() {
	if os.Getenv(childEnv) != "" { // an engine process of -procs: see procs.go
		os.Exit(childMain(os.Stdin, os.Stdout, os.Stderr))
	}
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "taskerbench:", err)
		os.Exit(1)
	}
}

// run parses args, makes every run they ask for and writes the results to
// stdout as JSON lines; usage and flag errors go to stderr.
func run(args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if opts.soak.on {
		return runSoak(opts, stdout)
	}
	specs, err := plan(opts)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for i, spec := range specs {
		if i == len(specs)-1 {
			spec.cpuProfile = opts.cpuProfile
		}
		if err := repeat(enc, spec, opts); err != nil {
			return err
		}
	}
	return writeMemProfile(opts.memProfile)
}

// parseFlags parses the command line.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("taskerbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults(); fmt.Fprint(stderr, soakUsage) }
	store := fs.String("store", "memory", "stores to run: memory, sqlite, sqlite-full, postgres, a comma-separated list, or all (the first three)")
	shape := fs.String("shape", "all", "shapes to run: diamond, wide, chain, tree, many, a comma-separated list, or all")
	fs.IntVar(&o.tasks, "tasks", 0, "tasks per run; 0 means the shape's default (diamond 1000, wide 10, chain 50, tree 50, many 1000)")
	fs.IntVar(&o.submitters, "submitters", -1, "goroutines submitting tasks, 0 for serial; -1 means the shape's default (many GOMAXPROCS×4, others 0)")
	fs.IntVar(&o.inflight, "inflight", 0, "closed loop: N submitters, each submitting its next task once its last completed; 0 means open loop (-submitters)")
	fs.DurationVar(&o.duration, "duration", 0, "closed loop: submit for this long instead of -tasks tasks (needs -inflight)")
	fs.StringVar(&o.wait, "wait", "outcome", "how each task is awaited: outcome (Engine.WaitOutcome, from memory) or full (Engine.Wait, which reads the task and its trail back from the store)")
	fs.StringVar(&o.body, "body", "noop", "what each step does: noop (returns {}) or decode (decodes every parent's result into a map, checks it, returns a small map)")
	fs.IntVar(&o.sizes.width, "width", 1000, "parallel steps of the wide shape")
	fs.IntVar(&o.sizes.length, "length", 100, "steps of the chain shape")
	fs.IntVar(&o.sizes.depth, "depth", 6, "levels below the root of the tree shape")
	fs.IntVar(&o.procs, "procs", 0, "engine processes on one PostgreSQL schema (-store postgres, -inflight), children of this one; 0 runs the engine in this process")
	fs.IntVar(&o.workers, "workers", 0, "tasker.Config.Workers; 0 means the engine default (tasker.DefaultWorkers)")
	fs.DurationVar(&o.sleep, "sleep", 0, "how long each handler sleeps (honouring its context); 0 returns at once")
	fs.IntVar(&o.repeat, "repeat", 1, "runs of each configuration, one line each")
	fs.BoolVar(&o.median, "median", false, "after each configuration's runs, print a line of their medians")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "limit on each run")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the last run (submit to last completion) to this file")
	fs.StringVar(&o.memProfile, "memprofile", "", "write the allocs profile to this file after the last run (allocation totals cover the whole process)")
	addSoakFlags(fs, &o.soak)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	fs.Visit(func(f *flag.Flag) { o.soak.shapeSet = o.soak.shapeSet || f.Name == "shape" })
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.stores, err = expandStores(*store); err != nil {
		return o, err
	}
	if o.shapes, err = expand(*shape, shapeNames, "shape"); err != nil {
		return o, err
	}
	return o, o.check()
}

// check reports flag values out of range.
func (o options) check() error {
	switch {
	case o.tasks < 0:
		return fmt.Errorf("-tasks must not be negative, got %d", o.tasks)
	case o.submitters < -1:
		return fmt.Errorf("-submitters must be -1 or more, got %d", o.submitters)
	case o.workers < 0:
		return fmt.Errorf("-workers must not be negative, got %d", o.workers)
	case o.repeat < 1:
		return fmt.Errorf("-repeat must be at least 1, got %d", o.repeat)
	case o.sleep < 0:
		return fmt.Errorf("-sleep must not be negative, got %s", o.sleep)
	case o.timeout <= 0:
		return fmt.Errorf("-timeout must be positive, got %s", o.timeout)
	}
	return errors.Join(o.checkLoop(), o.checkProcs())
}

// checkLoop reports the closed-loop and body flags out of range or in
// conflict.
func (o options) checkLoop() error {
	switch {
	case o.inflight < 0:
		return fmt.Errorf("-inflight must not be negative, got %d", o.inflight)
	case o.inflight > 0 && o.submitters >= 0:
		return errors.New("-inflight and -submitters exclude each other: -inflight is the closed loop, -submitters the open one")
	case o.duration < 0:
		return fmt.Errorf("-duration must not be negative, got %s", o.duration)
	case o.duration > 0 && o.inflight == 0:
		return errors.New("-duration needs -inflight: only the closed loop runs for a time")
	case o.duration > 0 && o.tasks > 0:
		return errors.New("-duration and -tasks exclude each other")
	case !slices.Contains(bodyNames, o.body):
		return fmt.Errorf("unknown body %q: want %s", o.body, strings.Join(bodyNames, " or "))
	case o.wait != "outcome" && o.wait != "full":
		return fmt.Errorf("unknown wait %q: want outcome or full", o.wait)
	}
	return nil
}

// expand turns a flag value, a comma-separated list of names or "all", into
// names, checking each against known.
func expand(value string, known []string, what string) ([]string, error) {
	if value == "all" {
		return known, nil
	}
	var out []string
	for name := range strings.SplitSeq(value, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(known, name) {
			return nil, fmt.Errorf("unknown %s %q: want %s, a comma-separated list, or all",
				what, name, strings.Join(known, ", "))
		}
		out = append(out, name)
	}
	return out, nil
}

// plan returns the configurations to run, store by store, shape by shape.
func plan(o options) ([]runSpec, error) {
	var specs []runSpec
	for _, st := range o.stores {
		for _, name := range o.shapes {
			sh, err := newShape(name, o.sizes)
			if err != nil {
				return nil, err
			}
			spec := runSpec{store: st, shape: sh, tasks: o.tasks, submitters: o.submitters,
				inflight: o.inflight, duration: o.duration, body: o.body, wait: o.wait,
				workers: o.workers, sleep: o.sleep, timeout: o.timeout, procs: o.procs}
			if spec.tasks == 0 {
				spec.tasks = sh.defaultTasks
			}
			if spec.submitters < 0 {
				spec.submitters = sh.submitters
			}
			specs = append(specs, spec)
		}
	}
	return specs, nil
}

// repeat makes o.repeat runs of spec, printing each, then their medians if
// asked. Only the last run writes spec's CPU profile.
func repeat(enc *json.Encoder, spec runSpec, o options) error {
	profile := spec.cpuProfile
	results := make([]result, 0, o.repeat)
	for i := range o.repeat {
		spec.cpuProfile = ""
		if i == o.repeat-1 {
			spec.cpuProfile = profile
		}
		r, err := runOnce(spec)
		if err != nil {
			return fmt.Errorf("%s/%s run %d: %w", spec.store, spec.shape.name, i+1, err)
		}
		r.Run = i + 1
		if err := enc.Encode(r); err != nil {
			return err
		}
		results = append(results, r)
	}
	if !o.median {
		return nil
	}
	return enc.Encode(median(results))
}

// writeMemProfile writes the allocs profile to file, if file is not "".
func writeMemProfile(file string) error {
	if file == "" {
		return nil
	}
	runtime.GC() // bring the in-use figures up to date
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	return errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
}
