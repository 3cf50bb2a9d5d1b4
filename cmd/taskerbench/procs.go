package main

// -procs N: a run in N engine processes that share one PostgreSQL schema.
//
// The bench re-executes itself N times; each child (told its part in the
// environment variable TASKERBENCH_CHILD, as JSON) opens a pool of its own
// on the run's schema, starts an engine there (its own Config.Owner, the
// default lease), says "ready" on stdout and waits for "go" on stdin. The
// parent creates and migrates the schema, starts the children, and once
// every one is ready tells them all to go: each runs its share of the
// closed loop (-inflight and -tasks are totals, split as evenly as they
// go; -duration is each child's), submitting to its own engine, and
// reports its samples and costs on stdout as one JSON line. Its engine
// keeps running, for the tasks other children's engines may hand it,
// until the parent closes its stdin once every child has reported; then it
// stops the engine and exits. The parent merges the samples: the figures
// are those of all the processes together (see aggregate).

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/postgres"
)

// childEnv is the environment variable that makes the bench a child of
// -procs; it holds the child's childSpec.
const childEnv = "TASKERBENCH_CHILD"

// childSpec is a child's part of a run.
type childSpec struct {
	Schema   string        `json:"schema"`
	Shape    string        `json:"shape"`
	Sizes    [3]int        `json:"sizes"` // width, length, depth
	Tasks    int           `json:"tasks"`
	Inflight int           `json:"inflight"`
	Duration time.Duration `json:"duration"`
	Body     string        `json:"body"`
	Wait     string        `json:"wait"`
	Workers  int           `json:"workers"`
	Sleep    time.Duration `json:"sleep"`
	Timeout  time.Duration `json:"timeout"`
}

// childReport is what a child reports once its share of the drive is over.
type childReport struct {
	Samples  [][3]int64    `json:"samples"` // submitted and done (Unix ns), and 1 when the task completed
	Mallocs  uint64        `json:"mallocs"`
	PeakHeap uint64        `json:"peak_heap"`
	CPU      time.Duration `json:"cpu"`
	CPUKnown bool          `json:"cpu_known"`
	Error    string        `json:"error,omitempty"`
}

// checkProcs reports -procs values out of range or in conflict.
func (o options) checkProcs() error {
	switch {
	case o.procs < 0:
		return fmt.Errorf("-procs must not be negative, got %d", o.procs)
	case o.procs == 0:
		return nil
	case slices.ContainsFunc(o.stores, func(s string) bool { return s != postgresStore }):
		return errors.New("-procs needs -store postgres: the engine processes share one store")
	case o.inflight < o.procs:
		return fmt.Errorf("-procs %d needs the closed loop with at least one task in flight per process (-inflight %d or more)", o.procs, o.procs)
	case o.cpuProfile != "" || o.memProfile != "":
		return errors.New("-cpuprofile and -memprofile profile this process: with -procs, the engines run in its children")
	}
	return nil
}

// child returns child i's part of spec, on schema.
func (spec runSpec) child(i int, schema string) childSpec {
	share := func(n int) int {
		if i < n%spec.procs {
			return n/spec.procs + 1
		}
		return n / spec.procs
	}
	cs := childSpec{Schema: schema, Shape: spec.shape.name, Tasks: share(spec.tasks), Inflight: share(spec.inflight),
		Duration: spec.duration, Body: spec.body, Wait: spec.wait, Workers: spec.workers, Sleep: spec.sleep, Timeout: spec.timeout}
	switch spec.shape.param {
	case "width":
		cs.Sizes[0] = spec.shape.size
	case "length":
		cs.Sizes[1] = spec.shape.size
	case "depth":
		cs.Sizes[2] = spec.shape.size
	}
	return cs
}

// runSpec returns the run a child makes of its part.
func (cs childSpec) runSpec() (runSpec, error) {
	sh, err := newShape(cs.Shape, sizes{width: cs.Sizes[0], length: cs.Sizes[1], depth: cs.Sizes[2]})
	return runSpec{store: postgresStore, shape: sh, tasks: cs.Tasks, inflight: cs.Inflight, duration: cs.Duration,
		body: cs.Body, wait: cs.Wait, workers: cs.Workers, sleep: cs.Sleep, timeout: cs.Timeout}, err
}

// runProcs makes one run of spec in spec.procs child processes on a fresh
// schema, dropped after, and returns the figures of all of them together.
func runProcs(spec runSpec) (res result, err error) {
	if spec.duration == 0 && spec.tasks < spec.procs {
		return result{}, fmt.Errorf("-procs %d needs at least one task per process, got -tasks %d", spec.procs, spec.tasks)
	}
	ctx, cancel := context.WithTimeout(context.Background(), spec.timeout)
	defer cancel()
	pool, err := newPool(ctx)
	if err != nil {
		return result{}, err
	}
	defer pool.Close()
	schema := newSchemaName()
	defer func() { err = errors.Join(err, dropSchema(pool, schema)) }()
	st, err := postgres.Open(ctx, pool, &postgres.Options{Schema: schema}) // migrated once, before the children start
	if err != nil {
		return result{}, err
	}
	st.Close()
	kids, err := startChildren(ctx, spec, schema)
	if err != nil {
		return result{}, err
	}
	defer func() { err = errors.Join(err, kids.stop()) }()
	reports, wall, err := kids.drive()
	if err != nil {
		return result{}, err
	}
	return aggregate(spec, reports, wall)
}

// child is a child process of -procs, as its parent sees it.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer
}

// children are a run's child processes.
type children []*child

// startChildren starts spec.procs children on schema and waits until each
// is ready, its engine started.
func startChildren(ctx context.Context, spec runSpec, schema string) (children, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("-procs: find this program to run its children: %w", err)
	}
	var kids children
	for i := range spec.procs {
		c, err := startBenchChild(ctx, exe, spec.child(i, schema))
		if err != nil {
			return nil, errors.Join(err, kids.stop())
		}
		kids = append(kids, c)
	}
	for i, c := range kids {
		if line, err := c.out.ReadString('\n'); err != nil || line != "ready\n" {
			return nil, errors.Join(fmt.Errorf("-procs: child %d did not get ready (%q, %v)", i, line, err), kids.stop())
		}
	}
	return kids, nil
}

// startBenchChild starts this program as the child cs describes.
func startBenchChild(ctx context.Context, exe string, cs childSpec) (*child, error) {
	raw, err := json.Marshal(cs)
	if err != nil {
		return nil, err
	}
	c := &child{cmd: exec.CommandContext(ctx, exe)}
	c.cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	c.cmd.Stderr = &c.stderr
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.out = bufio.NewReader(out)
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("-procs: start a child: %w", err)
	}
	return c, nil
}

// drive tells every child to go and collects their reports; it returns
// them with the time from the go to the last report.
func (kids children) drive() ([]childReport, time.Duration, error) {
	start := time.Now()
	for i, c := range kids {
		if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
			return nil, 0, fmt.Errorf("-procs: child %d: %w", i, err)
		}
	}
	reports, errs := make([]childReport, len(kids)), make([]error, len(kids))
	var wg sync.WaitGroup
	for i, c := range kids {
		wg.Go(func() {
			line, err := c.out.ReadBytes('\n')
			if err == nil {
				err = json.Unmarshal(line, &reports[i])
			}
			if err == nil && reports[i].Error != "" {
				err = errors.New(reports[i].Error)
			}
			if err != nil {
				errs[i] = fmt.Errorf("-procs: child %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	return reports, time.Since(start), errors.Join(errs...)
}

// stop closes every child's stdin, which stops its engine, and waits for
// them to exit.
func (kids children) stop() error {
	var errs []error
	for _, c := range kids {
		c.stdin.Close()
	}
	for i, c := range kids {
		if err := c.cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("-procs: child %d: %w: %s", i, err, bytes.TrimSpace(c.stderr.Bytes())))
		}
	}
	return errors.Join(errs...)
}

// aggregate merges the children's reports into one result. Latencies and
// throughput are over every process's tasks, from the first submit to
// the last completion; max_inflight is the most tasks in flight at once
// across the processes; allocs_per_step and cpu_seconds are the
// processes' totals (cpu_util is that over wall × GOMAXPROCS: they share
// this machine); peak_heap_mib is the largest process's.
func aggregate(spec runSpec, reports []childReport, wall time.Duration) (result, error) {
	var samples []sample
	u := cost{wall: wall, cpuKnown: true}
	for _, rep := range reports {
		for _, s := range rep.Samples {
			samples = append(samples, sample{submitted: time.Unix(0, s[0]), done: time.Unix(0, s[1]), complete: s[2] == 1})
		}
		u.mallocs += rep.Mallocs
		u.peakHeap = max(u.peakHeap, rep.PeakHeap)
		u.cpu += rep.CPU
		u.cpuKnown = u.cpuKnown && rep.CPUKnown
	}
	if len(samples) == 0 {
		return result{}, errNoTasks
	}
	u.maxInflight = mostInFlight(samples)
	return summarize(spec, samples, u), nil
}

// mostInFlight returns the most samples between their submit and their
// done at once; a task done at the instant another is submitted is not
// counted with it.
func mostInFlight(samples []sample) int {
	type event struct {
		at    int64
		delta int
	}
	events := make([]event, 0, 2*len(samples))
	for _, s := range samples {
		events = append(events, event{s.submitted.UnixNano(), 1}, event{s.done.UnixNano(), -1})
	}
	slices.SortFunc(events, func(a, b event) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.delta, b.delta))
	})
	most, n := 0, 0
	for _, e := range events {
		n += e.delta
		most = max(most, n)
	}
	return most
}

// childMain runs this process as a child of -procs and returns its exit
// code; what went wrong goes to stderr.
func childMain(stdin io.Reader, stdout, stderr io.Writer) int {
	if err := runChild(os.Getenv(childEnv), stdin, stdout); err != nil {
		fmt.Fprintln(stderr, "taskerbench child:", err)
		return 1
	}
	return 0
}

// runChild is childMain: it starts the engine of the child raw describes,
// says ready, drives its share once told to go, reports, and stops once
// stdin ends.
func runChild(raw string, stdin io.Reader, stdout io.Writer) (err error) {
	var cs childSpec
	if err := json.Unmarshal([]byte(raw), &cs); err != nil {
		return fmt.Errorf("%s: %w", childEnv, err)
	}
	spec, err := cs.runSpec()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cs.Timeout)
	defer cancel()
	tmpl, err := spec.shape.template()
	if err != nil {
		return err
	}
	pool, err := newPool(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := postgres.New(pool, &postgres.Options{Schema: cs.Schema})
	defer func() { err = errors.Join(err, st.Close()) }()
	eng, err := startEngine(ctx, st, spec, tmpl)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopEngine(eng)) }()
	in := bufio.NewReader(stdin)
	fmt.Fprintln(stdout, "ready")
	if line, err := in.ReadString('\n'); err != nil || line != "go\n" {
		return fmt.Errorf("waiting for go: got %q, %v", line, err)
	}
	if err := json.NewEncoder(stdout).Encode(drivePart(ctx, eng, spec)); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, in) // the engine runs until the parent closes stdin
	return err
}

// drivePart drives a child's share of the run through eng and returns its
// samples and costs, as measure does for a run in one process.
func drivePart(ctx context.Context, eng *tasker.Engine, spec runSpec) childReport {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	heap := startHeapSampler(heapSampleEvery)
	d := &driver{eng: eng, full: spec.wait == "full", req: tasker.SubmitRequest{Namespace: benchNamespace,
		Name: spec.shape.templateName(), Initiator: "taskerbench", SourceSystem: "taskerbench"}}
	cpu0, ok0 := processCPU()
	samples, err := d.drive(ctx, spec)
	cpu1, ok1 := processCPU()
	rep := childReport{PeakHeap: heap.stop(), CPU: cpu1 - cpu0, CPUKnown: ok0 && ok1}
	runtime.ReadMemStats(&after)
	rep.Mallocs = after.Mallocs - before.Mallocs
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	rep.Samples = make([][3]int64, len(samples))
	for i, s := range samples {
		rep.Samples[i] = [3]int64{s.submitted.UnixNano(), s.done.UnixNano(), 0}
		if s.complete {
			rep.Samples[i][2] = 1
		}
	}
	return rep
}
