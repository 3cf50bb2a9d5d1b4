package tasker_test

// The checks of TestCrashRecovery: what the store and the execution log
// must show after the kills. See crash_test.go.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/sqlite"
)

// crashAttempt names one attempt of one step.
type crashAttempt struct {
	task, step string
	attempt    int
}

// crashFigures is what the store and the log hold after a kill.
type crashFigures struct {
	exists                         bool
	tasks, tasksDone               int
	steps, stepsDone, stepsWaiting int
	inProgress                     []crashAttempt // steps the kill cut short
	logLines                       int
	dynamic                        crashDynamicFigures
}

// pending is how many steps of the stored tasks have not started yet.
func (f crashFigures) pending() int {
	return f.steps - f.stepsDone - f.stepsWaiting - len(f.inProgress)
}

func (f crashFigures) String() string {
	if !f.exists {
		return fmt.Sprintf("no store yet, %d log lines", f.logLines)
	}
	return fmt.Sprintf("tasks %d (%d complete), steps %d (%d complete, %d waiting for retry, %d in progress: interrupted), %d log lines; %s",
		f.tasks, f.tasksDone, f.steps, f.stepsDone, f.stepsWaiting, len(f.inProgress), f.logLines, f.dynamic)
}

// crashSnapshot reads the figures of dir while no child runs. The child may
// have been killed before it created the store.
func crashSnapshot(t *testing.T, dir string) crashFigures {
	t.Helper()
	var f crashFigures
	if lines, err := os.ReadFile(filepath.Join(dir, crashLog)); err == nil {
		f.logLines = bytes.Count(lines, []byte("\n"))
	}
	if _, err := os.Stat(filepath.Join(dir, crashDB)); errors.Is(err, os.ErrNotExist) {
		return f
	}
	f.exists = true
	st, err := sqlite.Open(filepath.Join(dir, crashDB), nil)
	if err != nil {
		t.Fatalf("open the store after a kill: %v", err)
	}
	defer st.Close()
	ctx := context.Background()
	tasks, err := st.ListTasks(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		f.tasks++
		if task.State == string(tasker.TaskComplete) {
			f.tasksDone++
		}
		steps, err := st.Steps(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			f.steps++
			f.dynamic.add(task, s)
			switch tasker.StepState(s.State) {
			case tasker.StepComplete:
				f.stepsDone++
			case tasker.StepWaitingForRetry:
				f.stepsWaiting++
			case tasker.StepInProgress:
				f.inProgress = append(f.inProgress, crashAttempt{task.ID, s.Name, s.Attempts})
			}
		}
	}
	return f
}

// crashLogged is what the execution logs say the handlers did.
type crashLogged struct {
	runs  map[crashAttempt]int         // how many times the handler of each attempt was called
	items map[crashAttempt][]int       // the items each batch worker attempt processed, in order
	calls map[crashAttempt][]crashCall // each call of each attempt's handler, in log order
}

// crashCall is one call of a handler, as an execution log tells it.
type crashCall struct {
	log        string    // the log's file name: which process made the call
	begin, end time.Time // end is zero when the call never returned (a kill cut it short)
}

// crashReadLog reads the execution logs at paths (see crashTimed and
// crashWork): lines "<task> <step> <attempt> begin <unix ns>" and
// "… end <begin unix ns> <unix ns>" of handler calls, and
// "… item <item>" of items processed.
func crashReadLog(t *testing.T, paths ...string) crashLogged {
	t.Helper()
	l := crashLogged{runs: make(map[crashAttempt]int), items: make(map[crashAttempt][]int), calls: make(map[crashAttempt][]crashCall)}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			if err := l.add(filepath.Base(path), sc.Text()); err != nil {
				f.Close()
				t.Fatalf("execution log %s line %d is malformed: %q: %v", path, n, sc.Text(), err)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// add adds line of the execution log named log.
func (l *crashLogged) add(log, line string) error {
	fields := strings.Fields(line)
	if len(fields) < 5 {
		return errors.New("too few fields")
	}
	a := crashAttempt{task: fields[0], step: fields[1]}
	nums := make([]int64, len(fields)-4)
	var err error
	a.attempt, err = strconv.Atoi(fields[2])
	for i := range nums {
		var e error
		nums[i], e = strconv.ParseInt(fields[4+i], 10, 64)
		err = errors.Join(err, e)
	}
	switch kind := fields[3]; {
	case err != nil:
		return err
	case kind == "begin" && len(nums) == 1:
		l.runs[a]++
		l.calls[a] = append(l.calls[a], crashCall{log: log, begin: time.Unix(0, nums[0])})
	case kind == "end" && len(nums) == 2:
		return l.ended(a, log, time.Unix(0, nums[0]), time.Unix(0, nums[1]))
	case kind == "item" && len(nums) == 1:
		l.items[a] = append(l.items[a], int(nums[0]))
	default:
		return fmt.Errorf("unknown line kind %q with %d numbers", kind, len(nums))
	}
	return nil
}

// ended records the end of the call of a's handler that log says began at
// begin.
func (l *crashLogged) ended(a crashAttempt, log string, begin, end time.Time) error {
	for i, c := range l.calls[a] {
		if c.log == log && c.begin.Equal(begin) && c.end.IsZero() {
			l.calls[a][i].end = end
			return nil
		}
	}
	return errors.New("the end of a call whose beginning is not logged")
}

// crashVerify checks the SQLite store of dir and its execution log once
// every task is done; cut lists the attempts the kills left in progress.
func crashVerify(t *testing.T, dir string, ts []*tasker.Template, tasks int, cut map[crashAttempt]int) {
	st, err := sqlite.Open(filepath.Join(dir, crashDB), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	crashVerifyStore(t, st, ts, tasks, crashReadLog(t, filepath.Join(dir, crashLog)), cut)
}

// crashVerifyStore checks st and the execution logs l once every task is
// done: st holds the tasks crash-0 … crash-<tasks-1>, each once, and the
// sub-tasks of those of the delegate shape, nothing else, and every check
// of crashVerifier passes. cut lists the attempts that kills left in
// progress. It returns the verifier, for its figures.
func crashVerifyStore(t *testing.T, st store.Store, ts []*tasker.Template, tasks int, l crashLogged, cut map[crashAttempt]int) *crashVerifier {
	eng, err := tasker.New(st, nil) // never started: it only reads
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Stop(context.Background())
	if err := eng.AddTemplates(ts...); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	list, err := eng.List(ctx, tasker.TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	byKey := crashKeys(t, list)
	v := newCrashVerifier(t, st, eng, ts, l, cut)
	top := make(map[string]bool)
	for n := range tasks {
		key := fmt.Sprintf("crash-%d", n)
		id, ok := byKey[key]
		if !ok {
			t.Errorf("no task has key %s", key)
			continue
		}
		top[id] = true
		task, err := eng.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		v.task(ts[n%len(ts)], n, task)
	}
	for _, task := range list {
		if !top[task.ID] && v.children[task.ID] == "" {
			t.Errorf("task %s (%s, key %q) is neither one of the %d tasks submitted nor the sub-task of one", task.ID, task.Name, task.IdempotencyKey, tasks)
		}
	}
	v.finish(len(list))
	return v
}

// crashKeys maps the idempotency keys of list to their tasks' IDs; a key
// that two tasks have is an error.
func crashKeys(t *testing.T, list []*tasker.Task) map[string]string {
	byKey := make(map[string]string)
	for _, task := range list {
		if prev, dup := byKey[task.IdempotencyKey]; dup {
			t.Errorf("key %q has two tasks: %s and %s", task.IdempotencyKey, prev, task.ID)
		}
		byKey[task.IdempotencyKey] = task.ID
	}
	return byKey
}

// crashVerifier checks tasks one by one and keeps the figures.
type crashVerifier struct {
	t       *testing.T
	st      store.Store
	eng     *tasker.Engine              // an engine on st, not started, for Get
	tmpls   map[string]*tasker.Template // by name
	runs    map[crashAttempt]int        // the execution logs: handler calls
	items   map[crashAttempt][]int      // the execution logs: items processed
	calls   map[crashAttempt][]crashCall
	byStep  map[[2]string][]int   // the execution logs: task and step → attempts run
	logged  map[crashAttempt]bool // log lines matched to an in_progress transition
	retried map[crashAttempt]bool // attempts that went in_progress → waiting_for_retry
	cut     map[crashAttempt]int  // attempts the kills left in progress
	// children maps each sub-task checked to its parent task.
	children map[string]string

	steps, planned, unlogged, interruptedCode int
	late                                      int // calls after their step's completion, of attempts their process had lost
	resumed, redone                           int // batch worker attempts that resumed from a checkpoint; items processed again
}

func newCrashVerifier(t *testing.T, st store.Store, eng *tasker.Engine, ts []*tasker.Template, l crashLogged,
	cut map[crashAttempt]int) *crashVerifier {
	v := &crashVerifier{t: t, st: st, eng: eng, tmpls: make(map[string]*tasker.Template), runs: l.runs, items: l.items,
		calls: l.calls, byStep: make(map[[2]string][]int), logged: make(map[crashAttempt]bool),
		retried: make(map[crashAttempt]bool), cut: cut, children: make(map[string]string)}
	for _, tmpl := range ts {
		v.tmpls[tmpl.Name] = tmpl
	}
	for a, n := range l.runs {
		k := [2]string{a.task, a.step}
		v.byStep[k] = append(v.byStep[k], a.attempt)
		if most := crashCallsPerAttempt(a.step); most > 0 && n > most {
			t.Errorf("task %s step %s attempt %d ran %d times", a.task, a.step, a.attempt, n)
		}
	}
	for a := range l.items {
		if l.runs[a] == 0 {
			t.Errorf("task %s step %s attempt %d processed items, but its handler never logged its run", a.task, a.step, a.attempt)
		}
	}
	return v
}

// finish checks what only all tasks together show, and logs the figures.
func (v *crashVerifier) finish(tasks int) {
	t := v.t
	for a := range v.runs {
		if !v.logged[a] {
			t.Errorf("log line %s %s %d belongs to no task of the store", a.task, a.step, a.attempt)
		}
	}
	recovered := 0
	for a, cycle := range v.cut {
		if v.retried[a] {
			recovered++
		} else {
			t.Errorf("task %s step %s attempt %d was in progress at kill %d, but no in_progress → waiting_for_retry of that attempt is recorded",
				a.task, a.step, a.attempt, cycle)
		}
	}
	t.Logf("verified %d tasks, %d steps, %d handler runs: %d attempts cut short by the kills and recorded as interrupted (%d steps end with code %s), "+
		"%d planned first-attempt failures, %d claimed attempts that never reached their handler; "+
		"%d batch worker attempts resumed from a checkpoint, %d items processed again after a kill fell between processing and checkpoint; "+
		"%d calls began after their step's completion, each of an attempt its process had lost (see timing)",
		tasks, v.steps, len(v.runs), recovered, v.interruptedCode, tasker.CodeInterrupted, v.planned, v.unlogged, v.resumed, v.redone, v.late)
}

func (v *crashVerifier) task(tmpl *tasker.Template, n int, task *tasker.Task) {
	t := v.t
	t.Helper()
	if task.Namespace != tmpl.Namespace || task.Name != tmpl.Name {
		t.Errorf("task crash-%d (%s) is a %s/%s, want %s", n, task.ID, task.Namespace, task.Name, tmpl)
		return
	}
	var in crashInput
	if err := json.Unmarshal(task.Context, &in); err != nil || in.N != n {
		t.Errorf("task crash-%d (%s): input %s, want n=%d", n, task.ID, task.Context, n)
	}
	if task.State != tasker.TaskComplete {
		t.Errorf("task crash-%d (%s) is %s, want complete", n, task.ID, task.State)
	}
	var moves []string
	for _, tr := range task.Transitions {
		moves = append(moves, tr.From+"→"+tr.To)
	}
	if want := []string{"pending→in_progress", "in_progress→complete"}; !slices.Equal(moves, want) {
		t.Errorf("task crash-%d (%s): task transitions %v, want %v", n, task.ID, moves, want)
	}

	// The store's trail, in apply order, gives each transition a position.
	trail, err := v.st.Transitions(context.Background(), task.ID)
	if err != nil {
		t.Fatal(err)
	}
	completedAt := make(map[string]int) // step → position of its complete transition
	for i, tr := range trail {
		if tr.To == string(tasker.StepComplete) && tr.Step != "" {
			completedAt[tr.Step] = i
		}
	}
	switch tmpl.Name {
	case "decision":
		v.decisionTask(n, task, trail, completedAt)
	case "batch":
		v.batchTask(n, task, trail, completedAt)
	case "delegate":
		v.delegateTask(n, task, trail, completedAt)
	default:
		v.staticTask(tmpl, n, task, trail, completedAt)
	}
}

// staticTask checks the steps of a task of a static shape: each step's
// sum is 1 + its dependencies' (+ n for a root).
func (v *crashVerifier) staticTask(tmpl *tasker.Template, n int, task *tasker.Task, trail []store.Transition, completedAt map[string]int) {
	sums := make(map[string]int)
	var names []string
	for _, spec := range tmpl.Steps {
		names = append(names, spec.Name)
		sum := 1
		if len(spec.Dependencies) == 0 {
			sum += n
		}
		for _, d := range spec.Dependencies {
			sum += sums[d]
		}
		sums[spec.Name] = sum
		if s := v.stepOf(task, spec.Name); s != nil {
			v.step(task, s, crashResult{Step: spec.Name, Sum: sum})
			v.order(task, spec.Name, spec.Dependencies, trail, completedAt)
		}
	}
	v.stepNames(task, names)
}

// stepOf returns task's step name, or reports that it has none.
func (v *crashVerifier) stepOf(task *tasker.Task, name string) *tasker.Step {
	v.t.Helper()
	s := task.Step(name)
	if s == nil {
		v.t.Errorf("task %s (%s) has no step %s", task.ID, task.Name, name)
	}
	return s
}

// crashClaim reports whether a step's transition from → to is the claim
// of an attempt; in_progress → in_progress is a checkpoint.
func crashClaim(from, to string) bool {
	return to == string(tasker.StepInProgress) && from != to
}

// step checks one step: its result, its trail, and the log lines of it.
func (v *crashVerifier) step(task *tasker.Task, s *tasker.Step, want crashResult) {
	t := v.t
	t.Helper()
	v.steps++
	where := fmt.Sprintf("task %s step %s", task.ID, s.Name)
	var got crashResult
	if s.State != tasker.StepComplete || json.Unmarshal(s.Result, &got) != nil || got != want {
		t.Errorf("%s: %s with result %s, want complete with %+v", where, s.State, s.Result, want)
	}
	if s.LastError != nil && s.LastError.Code == tasker.CodeInterrupted {
		v.interruptedCode++
	}
	completed := v.trail(where, task, s)
	if completed > 0 && v.runs[crashAttempt{task.ID, s.Name, completed}] == 0 {
		t.Errorf("%s: completed in attempt %d, but the handler never logged that attempt", where, completed)
	}
	for _, a := range v.byStep[[2]string{task.ID, s.Name}] {
		if completed > 0 && a > completed {
			t.Errorf("%s: ran attempt %d after completing in attempt %d", where, a, completed)
		}
		if !v.logged[crashAttempt{task.ID, s.Name, a}] {
			t.Errorf("%s: the handler ran attempt %d, which has no in_progress transition", where, a)
		}
	}
	v.timing(where, task, s, completed)
}

// timing checks the calls of step s's handler, in every process's log,
// against the time its completion was stored (its complete transition's
// At): no call began after it, so no step ran again once complete, and a
// call of the attempt that completed had returned by then.
//
// One kind of late call is counted (late), not failed: a call of an
// attempt recorded as interrupted, by a process that held the task's lease
// when it claimed the attempt and then stalled past the lease's end while
// another engine took the task over and completed the step; it went on
// when it woke, before it learned that it had lost the task (at its next
// renewal or write): a claimed attempt's call, or the call that wakes a
// step waiting for its sub-task. No lease stops a process that stalled
// from going on once it wakes; what matters is that its outcome was
// refused (the attempt is recorded interrupted, not complete), which the
// trail's checks verify.
func (v *crashVerifier) timing(where string, task *tasker.Task, s *tasker.Step, completed int) {
	t := v.t
	t.Helper()
	done := completion(s.Transitions)
	if done.IsZero() || completed == 0 {
		return // trail has reported it
	}
	returned := false
	for _, a := range v.byStep[[2]string{task.ID, s.Name}] {
		at := crashAttempt{task.ID, s.Name, a}
		for _, c := range v.calls[at] {
			if c.begin.After(done) && a != completed && v.cut[at] != 0 {
				v.late++
				continue
			}
			if c.begin.After(done) {
				t.Errorf("%s: a call of attempt %d began at %s (in %s), after the step's completion was stored at %s",
					where, a, c.begin.Format(time.RFC3339Nano), c.log, done.Format(time.RFC3339Nano))
			}
			returned = returned || a == completed && !c.end.IsZero() && !c.end.After(done)
		}
	}
	if !returned {
		t.Errorf("%s: no call of attempt %d had returned when its completion was stored at %s", where, completed, done.Format(time.RFC3339Nano))
	}
}

// completion returns when a step's trail records its completion (the last
// time, should there be several); zero when it does not.
func completion(trail []tasker.Transition) time.Time {
	var at time.Time
	for _, tr := range trail {
		if tr.To == string(tasker.StepComplete) {
			at = tr.At
		}
	}
	return at
}

// trail checks the transitions of step s: from pending (or created
// pending, for a step a decision or batch created), legal moves through
// its attempts in order, each claim matched to a handler run or to a kill,
// each retry to a kill or the planned failure, ending complete: it
// completes exactly once, in its last attempt, which trail returns.
func (v *crashVerifier) trail(where string, task *tasker.Task, s *tasker.Step) (completed int) {
	t := v.t
	t.Helper()
	state, attempt, completions := string(tasker.StepPending), 0, 0
	for k, tr := range s.Transitions {
		if k == 0 && tr.From == "" && tr.To == state && tr.Attempt == 0 {
			continue // created while the task ran
		}
		if tr.From != state {
			t.Errorf("%s: transition %s→%s (attempt %d) from state %s", where, tr.From, tr.To, tr.Attempt, state)
		}
		next := attempt
		if crashClaim(tr.From, tr.To) {
			next++
			v.claimed(where, crashAttempt{task.ID, s.Name, tr.Attempt})
		}
		if tr.Attempt != next {
			t.Errorf("%s: transition %s→%s has attempt %d, want %d", where, tr.From, tr.To, tr.Attempt, next)
		}
		switch tr.To {
		case string(tasker.StepComplete):
			completed = tr.Attempt
			completions++
		case string(tasker.StepWaitingForRetry):
			v.retry(where, crashAttempt{task.ID, s.Name, tr.Attempt}, s.LastError)
		}
		state, attempt = tr.To, tr.Attempt
	}
	if state != string(tasker.StepComplete) || completed != s.Attempts || completions != 1 {
		t.Errorf("%s: trail ends in %s at attempt %d after %d completions; the step says %s after %d attempts",
			where, state, attempt, completions, s.State, s.Attempts)
	}
	return completed
}

// claimed matches the claim of attempt a to its handler's run, or to the
// kill that came before it ran.
func (v *crashVerifier) claimed(where string, a crashAttempt) {
	switch _, killed := v.cut[a]; {
	case v.runs[a] > 0:
		v.logged[a] = true
	case killed:
		v.unlogged++ // claimed, then killed before its handler ran
	default:
		v.t.Errorf("%s: attempt %d was claimed but its handler never ran, and no kill cut it short", where, a.attempt)
	}
}

// retry checks that the retry of attempt a is either recovery's, of an
// attempt a kill cut short, or the flaky step's planned one.
func (v *crashVerifier) retry(where string, a crashAttempt, last *tasker.Failure) {
	v.retried[a] = true
	switch _, killed := v.cut[a]; {
	case killed:
	case a.step == "flaky" && a.attempt == 1:
		v.planned++
	default:
		v.t.Errorf("%s: attempt %d failed and was retried, yet it is neither the planned failure nor cut short by a kill (last error %+v)",
			where, a.attempt, last)
	}
}

// order checks that every attempt of step name started after each of
// deps completed, in apply order and in time.
func (v *crashVerifier) order(task *tasker.Task, name string, deps []string, trail []store.Transition, completedAt map[string]int) {
	t := v.t
	t.Helper()
	for i, tr := range trail {
		if tr.Step != name || !crashClaim(tr.From, tr.To) {
			continue
		}
		for _, d := range deps {
			j, ok := completedAt[d]
			if !ok || j > i || tr.At.Before(trail[j].At) {
				var at time.Time
				if ok {
					at = trail[j].At
				}
				t.Errorf("task %s: step %s attempt %d started at %s (position %d, after %s) before dependency %s completed (at %s, position %d, found %v)",
					task.ID, name, tr.Attempt, tr.At.Format(time.RFC3339Nano), i, crashMove(trail, i-1), d, at.Format(time.RFC3339Nano), j, ok)
			}
		}
	}
}

// crashMove describes transition i of trail, for messages.
func crashMove(trail []store.Transition, i int) string {
	if i < 0 || i >= len(trail) {
		return "nothing"
	}
	tr := trail[i]
	return fmt.Sprintf("%s %s→%s attempt %d at %s", cmp.Or(tr.Step, "the task"), tr.From, tr.To, tr.Attempt, tr.At.Format(time.RFC3339Nano))
}
