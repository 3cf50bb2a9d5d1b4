package tasker_test

// The crash test: durability and recovery under real process death.
//
// TestCrashRecovery re-executes this test binary as a child process
// (TestCrashChild, selected with -test.run and told its directory through the
// TASKER_CRASH_CHILD environment variable; without it TestCrashChild skips).
// The child opens a SQLite store in that directory, starts an engine with few
// workers (Start resumes every unfinished task), submits a fixed set of tasks
// of six DAG shapes, each with the idempotency key "crash-<n>" so that a
// re-submission after a restart creates nothing, and waits for all of them.
// Four shapes are static (diamond, chain, fan, flaky); two grow as they run
// (decision: a decision choosing one or two of three branches, then a
// deferred convergence; batch: a batchable step, workers that checkpoint
// every item, a convergence; see crash_shapes_test.go); one starts a
// sub-task (delegate: a step that runs a diamond as its sub-task and waits
// for it; see crash_subtask_test.go). Every call of a handler first appends
// one line "<task id> <step name> <attempt> begin <unix ns>" to an execution
// log, in one write to an O_APPEND file, so the line survives SIGKILL (it is
// in the page cache), and one more, "… end <begin> <unix ns>", when it
// returns (crashTimed); a batch worker appends "… item <i>" per item it
// processes.
//
// The parent starts the child, lets it run for a random 50–400 ms, kills it
// with SIGKILL, and repeats. Then it runs the child once more to the end,
// which must exit 0, and checks the store and the execution log: every task
// exists once and completed, every result is right, every step completed
// exactly once and no call of its handler began after its completion was
// stored, every handler call has its in_progress transition in the audit
// trail, no dependent started before its dependencies completed, and every
// attempt a kill left in progress was recorded as interrupted and retried.
// Of the dynamic shapes it checks too that exactly the chosen branches exist
// (the others are StepNotCreated) and the convergence names them; that the
// workers are those of the batches; that every item was processed at least
// once and checkpointed exactly once, twice only when a kill fell between
// its processing and its checkpoint (see crashVerifier.checkpoints for the
// exact property); and that each delegate step started one sub-task, which
// passes every check of a diamond and ended before the step. It logs, per kill, how
// many tasks and steps were complete, how many attempts the kill cut short,
// and what it cut short of decisions and batches, and fails if four or more
// kills came while the child was busy running handlers yet none of them cut
// an attempt short.
//
// Flags (after the package, e.g. go test -race -run TestCrash . -crash.cycles=20 -v):
//
//	-crash.cycles N  how many times the child is killed (default 8; at most 3 with -short)
//	-crash.tasks N   how many tasks the child submits (default 600; at most 200 with -short)
//	-crash.seed S    replays a run's kill timings (the seed is logged; 0, the
//	                 default, picks one; the child's own timings stay random)

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/sqlite"
)

var (
	crashCycles = flag.Int("crash.cycles", 8, "TestCrashRecovery: how many times the child is killed (3 with -short)")
	crashSeed   = flag.Uint64("crash.seed", 0, "TestCrashRecovery: seed of the kill timings; 0 means a random one")
	crashTasks  = flag.Int("crash.tasks", 600, "TestCrashRecovery: how many tasks the child submits (at most 200 with -short)")
)

const (
	crashEnv      = "TASKER_CRASH_CHILD" // the child's directory; unset in the parent
	crashWorkers  = 8                    // the child's Config.Workers: few, so the work outlasts several kills
	crashDB       = "tasker.db"
	crashLog      = "exec.log"
	crashAttempts = 100 // every step's max_attempts: more than the kills can use up
)

// crashTemplateYAML are the DAG shapes of the crash test. Every step of a
// template calls the same callable, "crash.<template name>", whose handler
// returns {"step": name, "sum": 1 + the sum of its dependencies' sums}, a root
// step adding the task's input n. The flaky template's "flaky" step also fails
// retryably on its first attempt, so tasks wait for retries across crashes.
var crashTemplateYAML = []string{`
name: diamond
namespace_name: crash
version: "1.0.0"
description: "The guide's five steps: validate → (payment ‖ inventory) → order → confirm"
steps:
  - name: validate_cart
    handler: {callable: crash.diamond}
    retry: &retry {max_attempts: 100, backoff: constant, backoff_base_ms: 3, max_backoff_ms: 3}
  - name: process_payment
    handler: {callable: crash.diamond}
    dependencies: [validate_cart]
    retry: *retry
  - name: update_inventory
    handler: {callable: crash.diamond}
    dependencies: [validate_cart]
    retry: *retry
  - name: create_order
    handler: {callable: crash.diamond}
    dependencies: [process_payment, update_inventory]
    retry: *retry
  - name: send_confirmation
    handler: {callable: crash.diamond}
    dependencies: [create_order]
    retry: *retry
input_schema:
  type: object
  required: [n]
  properties:
    n: {type: integer}
`, `
name: chain
namespace_name: crash
version: "1.0.0"
steps:
  - name: s1
    handler: {callable: crash.chain}
    retry: &retry {max_attempts: 100, backoff: constant, backoff_base_ms: 3, max_backoff_ms: 3}
  - {name: s2, handler: {callable: crash.chain}, dependencies: [s1], retry: *retry}
  - {name: s3, handler: {callable: crash.chain}, dependencies: [s2], retry: *retry}
  - {name: s4, handler: {callable: crash.chain}, dependencies: [s3], retry: *retry}
  - {name: s5, handler: {callable: crash.chain}, dependencies: [s4], retry: *retry}
  - {name: s6, handler: {callable: crash.chain}, dependencies: [s5], retry: *retry}
`, `
name: fan
namespace_name: crash
version: "1.0.0"
description: "1 → 8 → 1"
steps:
  - name: split
    handler: {callable: crash.fan}
    retry: &retry {max_attempts: 100, backoff: constant, backoff_base_ms: 3, max_backoff_ms: 3}
  - {name: w1, handler: {callable: crash.fan}, dependencies: [split], retry: *retry}
  - {name: w2, handler: {callable: crash.fan}, dependencies: [split], retry: *retry}
  - {name: w3, handler: {callable: crash.fan}, dependencies: [split], retry: *retry}
  - {name: w4, handler: {callable: crash.fan}, dependencies: [split], retry: *retry}
  - {name: w5, handler: {callable: crash.fan}, dependencies: [split], retry: *retry}
  - {name: w6, handler: {callable: crash.fan}, dependencies: [split], retry: *retry}
  - {name: w7, handler: {callable: crash.fan}, dependencies: [split], retry: *retry}
  - {name: w8, handler: {callable: crash.fan}, dependencies: [split], retry: *retry}
  - name: join
    handler: {callable: crash.fan}
    dependencies: [w1, w2, w3, w4, w5, w6, w7, w8]
    retry: *retry
`, `
name: flaky
namespace_name: crash
version: "1.0.0"
steps:
  - name: fetch
    handler: {callable: crash.flaky}
    retry: &retry {max_attempts: 100, backoff: constant, backoff_base_ms: 3, max_backoff_ms: 3}
  - name: flaky
    handler:
      callable: crash.flaky
      initialization: {fail_first_attempt: true}
    dependencies: [fetch]
    retry: *retry
  - {name: side, handler: {callable: crash.flaky}, dependencies: [fetch], retry: *retry}
  - {name: finish, handler: {callable: crash.flaky}, dependencies: [flaky, side], retry: *retry}
`}

// crashResult is what every crash-test step returns.
type crashResult struct {
	Step string `json:"step"`
	Sum  int    `json:"sum"`
}

// crashInput is every crash-test task's input.
type crashInput struct {
	N int `json:"n"`
}

// crashCodeFirstAttempt is the code of the flaky step's planned failure.
const crashCodeFirstAttempt = "FIRST_ATTEMPT"

func crashTemplates(t testing.TB) []*tasker.Template {
	t.Helper()
	var ts []*tasker.Template
	for i, y := range slices.Concat(crashTemplateYAML, crashDynamicYAML) {
		tmpl, err := tasker.ParseTemplate(fmt.Sprintf("crash_%d.yaml", i), []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tmpl)
	}
	return ts
}

// crashRequest is the request of task n: its template, input and key are
// functions of n alone, so every run of the child submits the same set.
func crashRequest(ts []*tasker.Template, n int) tasker.SubmitRequest {
	tmpl := ts[n%len(ts)]
	return tasker.SubmitRequest{
		Namespace: tmpl.Namespace, Name: tmpl.Name, Version: tmpl.Version,
		Context: crashInput{N: n}, Initiator: "test:crash", Reason: "crash test",
		IdempotencyKey: fmt.Sprintf("crash-%d", n),
	}
}

// crashHandler is the handler of every step of tmpl, a static shape. It
// begins as every crash-test handler does (crashBegin) and returns its
// step's sum, computed from the task input and its dependencies' results.
func crashHandler(tmpl *tasker.Template) tasker.HandlerFunc {
	return func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		if err := crashBegin(ctx); err != nil {
			return nil, err
		}
		spec := tmpl.Step(sc.StepName())
		sum := 1
		if len(spec.Dependencies) == 0 {
			var in crashInput
			if err := sc.DecodeInput(&in); err != nil {
				return nil, crashPermanent(err.Error())
			}
			sum += in.N
		}
		for _, dep := range spec.Dependencies {
			r, err := crashDependency(sc, dep)
			if err != nil {
				return nil, crashPermanent(err.Error())
			}
			sum += r.Sum
		}
		var init struct {
			FailFirstAttempt bool `json:"fail_first_attempt"`
		}
		if err := sc.Initialization(&init); err != nil {
			return nil, crashPermanent(err.Error())
		}
		if init.FailFirstAttempt && sc.Attempt() == 1 {
			return nil, &tasker.StepError{Message: "first attempt fails", Type: tasker.ErrorRetryable,
				Code: crashCodeFirstAttempt, Retryable: true}
		}
		return crashResult{Step: sc.StepName(), Sum: sum}, nil
	}
}

// crashBegin is how every crash-test handler begins, once crashTimed has
// logged its call: it sleeps 0–5 ms.
func crashBegin(ctx context.Context) error {
	return crashPause(ctx, 5*time.Millisecond)
}

// crashTimed is h, every call of which is logged: the line
// "<task id> <step name> <attempt> begin <unix ns>" before h runs, so that
// it survives a SIGKILL that cuts h short, and
// "<task id> <step name> <attempt> end <begin's unix ns> <unix ns>" once h
// returned (a sub-task's step is called twice in one attempt: once to
// start the sub-task, once when it ended).
func crashTimed(logf *os.File, h tasker.HandlerFunc) tasker.HandlerFunc {
	return func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		begin := time.Now().UnixNano()
		where := fmt.Sprintf("%s %s %d", sc.TaskID(), sc.StepName(), sc.Attempt())
		if err := crashLogLine(logf, fmt.Sprintf("%s begin %d\n", where, begin)); err != nil {
			return nil, err
		}
		out, err := h(ctx, sc)
		if logErr := crashLogLine(logf, fmt.Sprintf("%s end %d %d\n", where, begin, time.Now().UnixNano())); logErr != nil {
			return nil, logErr
		}
		return out, err
	}
}

// crashLogLine appends line to the execution log in one write.
func crashLogLine(logf *os.File, line string) error {
	if _, err := logf.Write([]byte(line)); err != nil {
		return crashPermanent("execution log: " + err.Error())
	}
	return nil
}

// crashPause sleeps a random 0 to most, or until ctx ends.
func crashPause(ctx context.Context, most time.Duration) error {
	select {
	case <-time.After(rand.N(most + 1)):
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// crashPermanent is a failure that is not retried: the crash test has no
// such failure, so the verifier finds it.
func crashPermanent(msg string) error {
	return &tasker.StepError{Message: msg, Type: tasker.ErrorPermanent}
}

// TestCrashChild is the child process of TestCrashRecovery; it skips unless
// TASKER_CRASH_CHILD names its directory.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("the child process of TestCrashRecovery; runs only when " + crashEnv + " is set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logf, err := os.OpenFile(filepath.Join(dir, crashLog), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	st, err := sqlite.Open(filepath.Join(dir, crashDB), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := tasker.New(st, &tasker.Config{Workers: crashWorkers})
	if err != nil {
		t.Fatal(err)
	}
	ts := crashTemplates(t)
	for _, tmpl := range ts {
		if err := eng.Register("crash."+tmpl.Name, crashHandlerFor(tmpl, logf)); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.AddTemplates(ts...); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := eng.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	ids := make([]string, *crashTasks)
	for n := range ids {
		if ids[n], err = eng.Submit(ctx, crashRequest(ts, n)); err != nil {
			t.Fatalf("Submit crash-%d: %v", n, err)
		}
	}
	t.Logf("started and submitted in %v", time.Since(t0))
	for n, id := range ids {
		task, err := eng.Wait(ctx, id)
		if err != nil {
			t.Fatalf("Wait crash-%d (%s): %v", n, id, err)
		}
		if task.State != tasker.TaskComplete {
			t.Errorf("task crash-%d (%s) is %s, want complete", n, id, task.State)
		}
	}
	t.Logf("every task complete after %v", time.Since(t0))
}

// crashChild is one run of a child process: this test binary, running one
// of its tests.
type crashChild struct {
	cmd   *exec.Cmd
	out   bytes.Buffer   // its output, to read once done is closed
	stdin io.WriteCloser // its standard input, when it has a pipe there
	done  chan struct{}
	err   error // cmd.Wait's, once done is closed
}

func startCrashChild(t *testing.T, dir string, tasks int) *crashChild {
	t.Helper()
	return startChild(t, "TestCrashChild", []string{crashEnv + "=" + dir}, false, "-crash.tasks="+strconv.Itoa(tasks))
}

// startChild starts this test binary as a child process that runs test
// alone, verbosely, with env added to its environment and args to its
// flags. With stdin, its standard input is a pipe (crashChild.stdin):
// closing it tells the child to end.
func startChild(t *testing.T, test string, env []string, stdin bool, args ...string) *crashChild {
	t.Helper()
	c := &crashChild{done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], append([]string{"-test.run=^" + test + "$", "-test.count=1", "-test.v"}, args...)...)
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if stdin {
		var err error
		if c.stdin, err = c.cmd.StdinPipe(); err != nil {
			t.Fatalf("start child: %v", err)
		}
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	return c
}

// killAfter kills the child with SIGKILL after d, unless it exits first,
// and waits for it; it reports whether the kill happened.
func (c *crashChild) killAfter(t *testing.T, d time.Duration) bool {
	t.Helper()
	select {
	case <-c.done:
		return false
	case <-time.After(d):
	}
	c.kill(t)
	return true
}

// kill kills the child with SIGKILL, unless it has exited, and waits for it.
func (c *crashChild) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill child: %v", err)
	}
	<-c.done
}

// exited reports whether the child has exited.
func (c *crashChild) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// passed reports whether the child exited 0 with its test passed.
func (c *crashChild) passed() bool {
	return c.err == nil && bytes.Contains(c.out.Bytes(), []byte("--- PASS: "))
}

func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child process")
	}
	cycles, tasks := *crashCycles, *crashTasks
	if testing.Short() {
		cycles, tasks = min(cycles, 3), min(tasks, 200)
	}
	if tasks < 1 {
		t.Fatalf("-crash.tasks=%d: want at least 1", tasks)
	}
	if cycles+2 >= crashAttempts {
		t.Fatalf("-crash.cycles=%d: at most %d, or steps may run out of attempts", cycles, crashAttempts-3)
	}
	seed := *crashSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (-crash.seed=%d replays the kill timings), %d cycles, %d tasks", seed, seed, cycles, tasks)
	dir := t.TempDir()
	ts := crashTemplates(t)
	k := crashKillCycles(t, dir, tasks, cycles, rand.New(rand.NewPCG(seed, 0)))

	start := time.Now()
	c := startCrashChild(t, dir, tasks)
	if c.killAfter(t, 2*time.Minute) {
		t.Fatalf("final run: child still running after 2 min, killed\n%s", c.out.Bytes())
	}
	if !c.passed() {
		t.Fatalf("final run: child failed: %v\n%s", c.err, c.out.Bytes())
	}
	t.Logf("final run: all tasks done in %v: %s", time.Since(start).Round(time.Millisecond), crashSnapshot(t, dir))

	crashVerify(t, dir, ts, tasks, k.cut)
	k.report(t, cycles, tasks)
}

// crashKills is what the kills of TestCrashRecovery did.
type crashKills struct {
	cut  map[crashAttempt]int // attempts left in progress by a kill → the cycle
	busy int                  // kills while handlers ran and many steps were pending

	// Kills that left a decision in progress, or decision tasks between
	// their decision and their convergence; kills that left batch workers
	// in progress, and workers in progress after a checkpoint (mid-batch);
	// kills that left a delegate step in progress (mid-subtask).
	decisionCut, decisionOpen, workerCut, midBatch, midSubtask int
}

// crashKillCycles starts the child, kills it after a random 50–400 ms, and
// repeats, cycles times.
func crashKillCycles(t *testing.T, dir string, tasks, cycles int, rng *rand.Rand) *crashKills {
	// A kill is busy if handlers ran in its cycle and the tasks created so
	// far still had plenty of pending steps: it then almost always cuts some
	// attempt short.
	k := &crashKills{cut: make(map[crashAttempt]int)}
	logLines := 0
	for cycle := 1; cycle <= cycles; cycle++ {
		d := time.Duration(50+rng.IntN(351)) * time.Millisecond
		c := startCrashChild(t, dir, tasks)
		if !c.killAfter(t, d) {
			if c.err != nil {
				t.Fatalf("cycle %d: child exited before the kill: %v\n%s", cycle, c.err, c.out.Bytes())
			}
			t.Logf("cycle %d: child finished every task within %v, before the kill: %s", cycle, d, crashSnapshot(t, dir))
			continue
		}
		s := crashSnapshot(t, dir)
		for _, a := range s.inProgress {
			if _, ok := k.cut[a]; !ok {
				k.cut[a] = cycle
			}
		}
		if s.logLines > logLines && s.pending() >= crashWorkers {
			k.busy++
		}
		logLines = s.logLines
		k.count(s.dynamic)
		t.Logf("cycle %d: killed after %v: %s", cycle, d, s)
	}
	return k
}

// count counts the kill that left f.
func (k *crashKills) count(f crashDynamicFigures) {
	for _, c := range []struct {
		kills *int
		n     int
	}{{&k.decisionCut, f.decisionsCut}, {&k.decisionOpen, f.decisionsOpen}, {&k.workerCut, f.workersCut}, {&k.midBatch, f.midBatch},
		{&k.midSubtask, f.delegatesCut}} {
		if c.n > 0 {
			*c.kills++
		}
	}
}

// report logs what the kills did, and fails the test if busy kills cut
// nothing short, or, with enough batch tasks, no batch worker mid-batch.
func (k *crashKills) report(t *testing.T, cycles, tasks int) {
	t.Logf("%d of %d kills were busy; the kills left %d attempts in progress", k.busy, cycles, len(k.cut))
	t.Logf("mid-decision: %d kills cut a decision short, %d found decision tasks between decision and convergence; "+
		"mid-batch: %d kills cut batch workers short, %d of them a worker that had saved a checkpoint; "+
		"mid-subtask: %d kills cut a delegate step short", k.decisionCut, k.decisionOpen, k.workerCut, k.midBatch, k.midSubtask)
	// A busy kill finds no attempt in progress now and then (a few per cent:
	// the claims were waiting on a checkpoint of the database, say); four in
	// a row is no longer chance.
	if k.busy >= 4 && len(k.cut) == 0 {
		t.Errorf("%d kills came while handlers were running, yet none left a step in progress", k.busy)
	}
	// Batch workers are most of the handlers' running time; a busy kill
	// finds one in progress after a checkpoint about nine times in ten.
	if k.busy >= 4 && tasks >= 60 && k.midBatch == 0 {
		t.Errorf("%d kills came while handlers were running, yet none cut a batch worker short after a checkpoint", k.busy)
	}
}
