package tasker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/memory"
)

// ackLost is a store whose CreateTask stores the task and then reports the
// caller's context as expired, as a network database does when the commit's
// acknowledgement is lost.
type ackLost struct{ store.Store }

func (a ackLost) CreateTask(ctx context.Context, t store.Task, s []store.Step) (string, bool, error) {
	if _, _, err := a.Store.CreateTask(context.Background(), t, s); err != nil {
		return "", false, err
	}
	return "", false, context.DeadlineExceeded
}

// TestSubmitStoredDespiteError: a task the store wrote although CreateTask
// failed is run, without a restart, and Submit reports it.
func TestSubmitStoredDespiteError(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := startEngine(t, ackLost{st}, twoStepHandlers(), mustParse(t, twoSteps))
		id, err := eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "test", Name: "two_steps"})
		if err != nil {
			t.Fatalf("Submit = %v, want the stored task's ID", err)
		}
		task, err := eng.Wait(context.Background(), id)
		if err != nil || task.State != tasker.TaskComplete {
			t.Fatalf("task: %s, want complete", stateOf(task, err))
		}
	})
}

func twoStepHandlers() map[string]tasker.StepHandler {
	return map[string]tasker.StepHandler{"test.first": echoStep("first"), "test.second": echoStep("second")}
}

// storedBehindTheEngine stores a task of two_steps in st through an engine
// that never starts, as a Submit that gave up before the driving engine
// heard of the task leaves it.
func storedBehindTheEngine(t *testing.T, st store.Store, key string) string {
	t.Helper()
	eng, err := tasker.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.AddTemplates(mustParse(t, twoSteps)); err != nil {
		t.Fatal(err)
	}
	id, err := eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "test", Name: "two_steps", IdempotencyKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestStoredTaskIsDriven: a task no run drives is driven from the moment
// the engine hears of it: a Submit with its idempotency key, or a Wait.
func TestStoredTaskIsDriven(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := startEngine(t, st, twoStepHandlers(), mustParse(t, twoSteps))
		ctx := context.Background()
		keyed := storedBehindTheEngine(t, st, "order-1")
		id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "test", Name: "two_steps", IdempotencyKey: "order-1"})
		if err != nil || id != keyed {
			t.Fatalf("Submit = %q, %v; want the stored task %q", id, err, keyed)
		}
		waited := storedBehindTheEngine(t, st, "")
		for _, id := range []string{keyed, waited} {
			task, err := eng.Wait(ctx, id)
			if err != nil || task.State != tasker.TaskComplete {
				t.Fatalf("task %s: %s, want complete", id, stateOf(task, err))
			}
			for _, s := range task.Steps {
				if s.Attempts != 1 {
					t.Errorf("task %s step %s: %d attempts, want 1", id, s.Name, s.Attempts)
				}
			}
		}
	})
}

// flaky fails store writes with a transient error: the first failures
// Applies from the n-th on, and again every time after.
type flaky struct {
	store.Store
	mu       sync.Mutex
	calls    int
	failFrom int // first failing call, counting from 1
	failures int // how many calls fail in a row
	failed   int
	every    int // after a success, fail again every this many calls; 0: never
}

var errDiskFull = errors.New("disk I/O error: database or disk is full")

func (f *flaky) Apply(ctx context.Context, cs []store.Change) error {
	f.mu.Lock()
	f.calls++
	fail := f.calls >= f.failFrom && f.failed < f.failures || f.every > 0 && f.calls%f.every == 0
	if fail {
		f.failed++
	}
	f.mu.Unlock()
	if fail {
		return errDiskFull
	}
	return f.Store.Apply(ctx, cs)
}

// TestFailedWritesAreRetried: store writes that fail for a while are
// retried until they succeed; every task completes without a restart, and
// no attempt is lost or counted twice.
func TestFailedWritesAreRetried(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		fl := &flaky{Store: st, failFrom: 5, failures: 6, every: 7}
		eng := startEngine(t, fl, twoStepHandlers(), mustParse(t, twoSteps))
		ids := submitN(t, eng, 20, tasker.SubmitRequest{Namespace: "test", Name: "two_steps"})
		waitAllClean(t, eng, ids)
		if fl.failed < 6 {
			t.Errorf("%d writes failed, want at least 6", fl.failed)
		}
	})
}

// submitN submits req n times and returns the tasks' IDs.
func submitN(t *testing.T, eng *tasker.Engine, n int, req tasker.SubmitRequest) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		id, err := eng.Submit(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// waitAllClean waits for every task and checks that it completed with one
// attempt of each step and no failure on record.
func waitAllClean(t *testing.T, eng *tasker.Engine, ids []string) {
	t.Helper()
	for _, id := range ids {
		task, err := eng.Wait(context.Background(), id)
		if err != nil || task.State != tasker.TaskComplete {
			t.Fatalf("task %s: %s, want complete", id, stateOf(task, err))
		}
		for _, s := range task.Steps {
			if s.Attempts != 1 || s.LastError != nil {
				t.Errorf("task %s step %s: %d attempts, last error %+v; want 1 clean attempt", id, s.Name, s.Attempts, s.LastError)
			}
		}
	}
}

// TestOperatorActionsAfterStop: after Stop an action is refused, never
// accepted and lost, and the store keeps the task as it was.
func TestOperatorActionsAfterStop(t *testing.T) {
	st := newMemory(t)
	block := make(chan struct{})
	started := make(chan struct{}, 1)
	eng := startEngineNoCleanup(t, st, map[string]tasker.StepHandler{
		"test.first": tasker.HandlerFunc(func(ctx context.Context, _ *tasker.StepContext) (any, error) {
			started <- struct{}{}
			select {
			case <-block:
			case <-ctx.Done():
			}
			return nil, ctx.Err()
		}),
		"test.second": echoStep("second"),
	})
	ctx := context.Background()
	id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "test", Name: "two_steps"})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	if err := eng.StopAndCancel(ctx); err != nil {
		t.Fatal(err)
	}
	close(block)
	for name, err := range map[string]error{
		"Cancel":  eng.Cancel(ctx, id, tasker.Action{By: "ops"}),
		"Retry":   eng.Retry(ctx, id, tasker.Action{By: "ops"}),
		"Resolve": eng.Resolve(ctx, id, "first", nil, tasker.Action{By: "ops"}),
	} {
		if !errors.Is(err, tasker.ErrEngineStopped) {
			t.Errorf("%s after Stop = %v, want ErrEngineStopped", name, err)
		}
	}
	rec, err := st.Task(ctx, id)
	if err != nil || rec.State != string(tasker.TaskInProgress) {
		t.Errorf("stored task: %+v, %v; want still in_progress, for the next engine", rec.State, err)
	}
}

// TestRetryAfterDeadline: a task that failed its deadline runs again under
// a new deadline, every step it cut off included, and completes.
func TestRetryAfterDeadline(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		var calls atomic.Int32
		slowOnce := tasker.HandlerFunc(func(ctx context.Context, _ *tasker.StepContext) (any, error) {
			if calls.Add(1) <= 2 { // the first run and the first retry pass their deadlines
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return "fast", nil
		})
		eng := startEngine(t, st, map[string]tasker.StepHandler{"test.slow": slowOnce, "test.after": echoStep("after")},
			mustParse(t, fmtTemplate(slowStep, "0")))
		ctx := context.Background()
		failed := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "slow", Timeout: 200 * time.Millisecond})
		if failed.State != tasker.TaskFailed {
			t.Fatalf("task = %s, want error", failed.State)
		}
		for range 2 {
			if err := eng.Retry(ctx, failed.ID, tasker.Action{By: "ops", Reason: "try again"}); err != nil {
				t.Fatalf("Retry: %v", err)
			}
			if _, err := eng.Wait(ctx, failed.ID); err != nil {
				t.Fatal(err)
			}
		}
		task, err := eng.Wait(ctx, failed.ID)
		if err != nil || task.State != tasker.TaskComplete {
			t.Fatalf("after Retry: %s, want complete", stateOf(task, err))
		}
		if s := step(t, task, "slow"); s.Attempts != 1 || string(s.Result) != `"fast"` {
			t.Errorf("slow: %d attempts, result %s; want the retried attempt's", s.Attempts, s.Result)
		}
		if a := step(t, task, "after"); a.State != tasker.StepComplete || a.Attempts != 1 {
			t.Errorf("after: %s, %d attempts; want complete after 1", a.State, a.Attempts)
		}
		// The new deadline is as long from the retry as the first was from
		// the submission.
		var retried time.Time
		for _, tr := range task.Transitions {
			if tr.From == "error" && tr.To == "in_progress" {
				retried = tr.At
			}
		}
		if got, want := task.Deadline.Sub(retried), failed.Deadline.Sub(failed.CreatedAt); got != want {
			t.Errorf("the retried task's deadline is %v after the retry, want %v", got, want)
		}
	})
}

// TestResolveNeedsTaskInError: Resolve is refused on a cancelled task and
// for a step the task does not have.
func TestResolveNeedsTaskInError(t *testing.T) {
	st := newMemory(t)
	eng, err := tasker.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	registerAll(t, eng, twoStepHandlers())
	if err := eng.AddTemplates(mustParse(t, twoSteps)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "test", Name: "two_steps"})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Cancel(ctx, id, tasker.Action{By: "ops"}); err != nil {
		t.Fatal(err)
	}
	if err := eng.Resolve(ctx, id, "first", "done", tasker.Action{By: "ops"}); !errors.Is(err, tasker.ErrIllegalTransition) {
		t.Errorf("Resolve on a cancelled task = %v, want ErrIllegalTransition", err)
	}
	if rec, _ := st.Task(ctx, id); rec.State != string(tasker.TaskCancelled) {
		t.Errorf("task = %s, want still cancelled", rec.State)
	}
	failedTask := crashedTask(t, st, func(id string, now time.Time) []store.Change {
		return []store.Change{taskStarts(id, now), claimed(id, "first", 1, now),
			{TaskID: id, Step: "first", From: "in_progress", FromAttempt: 1, To: "error", Attempt: 1, At: now},
			{TaskID: id, From: "in_progress", To: "error", At: now}}
	})
	if err := eng.Resolve(ctx, failedTask, "nosuch", nil, tasker.Action{}); !errors.Is(err, tasker.ErrStepNotFound) {
		t.Errorf("Resolve of an unknown step = %v, want ErrStepNotFound", err)
	}
}

// TestStaleTaskIsSetAside: a stored task whose template gained a step
// without a version bump does not stop Start: it is set aside in error
// (TEMPLATE_MISMATCH), cannot be retried, and other tasks run.
func TestStaleTaskIsSetAside(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		stale := storedBehindTheEngine(t, st, "")
		grown := strings.Replace(twoSteps, "steps:\n", "steps:\n  - {name: zeroth, handler: {callable: test.first}}\n", 1)
		other := strings.Replace(twoSteps, "name: two_steps", "name: other", 1)
		eng := startEngine(t, st, twoStepHandlers(), mustParse(t, grown), mustParse(t, other))
		task, err := eng.Get(ctx, stale)
		if err != nil || task.State != tasker.TaskFailed {
			t.Fatalf("stale task: %s, want error", stateOf(task, err))
		}
		if last := task.Transitions[len(task.Transitions)-1]; !strings.HasPrefix(last.Reason, tasker.CodeTemplateMismatch) {
			t.Errorf("stale task's last transition = %+v, want reason %s", last, tasker.CodeTemplateMismatch)
		}
		if err := eng.Retry(ctx, stale, tasker.Action{}); !errors.Is(err, tasker.ErrTemplateMismatch) {
			t.Errorf("Retry of the stale task = %v, want ErrTemplateMismatch", err)
		}
		fresh := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "other"})
		if fresh.State != tasker.TaskComplete {
			t.Errorf("a task of another template: %s, want complete", fresh.State)
		}
	})
}

// chainYAML returns a template of n steps, each after the one before.
func chainYAML(n int) string {
	var b strings.Builder
	b.WriteString("name: chain\nnamespace_name: perf\nversion: \"1.0.0\"\nsteps:\n  - {name: s0, handler: {callable: bench.noop}}\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  - {name: s%d, handler: {callable: bench.noop}, dependencies: [s%d]}\n", i, i-1)
	}
	return b.String()
}

// BenchmarkReadAllAncestors bounds reading the results of many ancestors:
// the last step of a 5,000-step chain reads all 4,999 of them, so the cost
// per op is linear in the chain, not quadratic.
func BenchmarkReadAllAncestors(b *testing.B) {
	const n = 5000
	tmpl := mustParseTB(b, chainYAML(n))
	names := make([]string, n-1)
	for i := range names {
		names[i] = fmt.Sprint("s", i)
	}
	var read atomic.Int64
	var run atomic.Bool
	h := tasker.HandlerFunc(func(_ context.Context, sc *tasker.StepContext) (any, error) {
		if sc.StepName() != fmt.Sprint("s", n-1) || !run.Load() {
			return 1, nil
		}
		for b.Loop() {
			for _, name := range names {
				if sc.RawDependencyResult(name) == nil {
					return nil, fmt.Errorf("no result for %s", name)
				}
			}
			read.Add(1)
		}
		return 1, nil
	})
	eng := startEngine(b, memory.New(), map[string]tasker.StepHandler{"bench.noop": h}, tmpl)
	run.Store(true)
	ctx := context.Background()
	id, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "perf", Name: "chain"})
	if err != nil {
		b.Fatal(err)
	}
	if task, err := eng.Wait(ctx, id); err != nil || task.State != tasker.TaskComplete {
		b.Fatalf("task: %v %v", task.State, err)
	}
	if read.Load() == 0 {
		b.Fatal("the last step read nothing")
	}
}

// TestIdempotencyKeyPerTemplate: a key dedupes within one template only;
// the same key for another template is another task, never the first one.
func TestIdempotencyKeyPerTemplate(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		other := strings.Replace(twoSteps, "name: two_steps", "name: other", 1)
		eng := startEngine(t, st, twoStepHandlers(), mustParse(t, twoSteps), mustParse(t, other))
		ctx := context.Background()
		a, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "test", Name: "two_steps", IdempotencyKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "test", Name: "other", IdempotencyKey: "k"})
		if err != nil || b == a {
			t.Fatalf("the same key for another template = %q, %v; want a new task, not %q", b, err, a)
		}
		again, err := eng.Submit(ctx, tasker.SubmitRequest{Namespace: "test", Name: "other", IdempotencyKey: "k"})
		if err != nil || again != b {
			t.Errorf("the key again for other = %q, %v; want %q", again, err, b)
		}
		waitAllClean(t, eng, []string{a, b})
		if task, _ := eng.Get(ctx, b); task.Name != "other" {
			t.Errorf("task %s is of %s, want other", b, task.Name)
		}
	})
}

// holdStep is a store whose Apply of a batch completing step hold blocks
// until release is closed, so that the batch becomes durable after others
// decided later.
type holdStep struct {
	store.Store
	hold    string
	held    chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *holdStep) Apply(ctx context.Context, cs []store.Change) error {
	for _, c := range cs {
		if c.Step == h.hold && c.To == string(tasker.StepComplete) {
			h.once.Do(func() { close(h.held) })
			<-h.release
		}
	}
	return h.Store.Apply(ctx, cs)
}

// TestJoinWaitsForStoredCompletions: a join starts only once the
// completions of all its dependencies are stored, even when the one decided
// first is stored last.
func TestJoinWaitsForStoredCompletions(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		h := &holdStep{Store: st, hold: "s0", held: make(chan struct{}), release: make(chan struct{})}
		w := newWatch(h)
		eng := startEngine(t, w, map[string]tasker.StepHandler{"bench.noop": noop}, mustParse(t, wideYAML(2)))
		id, err := eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "perf", Name: "wide"})
		if err != nil {
			t.Fatal(err)
		}
		<-h.held                     // s0's completion is decided, its write blocked
		w.await(t, "s1", "complete") // s1's completion is stored meanwhile
		close(h.release)
		task, err := eng.Wait(context.Background(), id)
		if err != nil || task.State != tasker.TaskComplete {
			t.Fatalf("task: %s", stateOf(task, err))
		}
		order := map[string]int{}
		w.mu.Lock()
		for k, c := range w.applied {
			order[c.Step+">"+c.To] = k
		}
		w.mu.Unlock()
		if claim := order["finish>in_progress"]; claim < order["s0>complete"] || claim < order["s1>complete"] {
			t.Errorf("finish was claimed at %d, before s0 (%d) and s1 (%d) were stored complete", claim, order["s0>complete"], order["s1>complete"])
		}
	})
}
