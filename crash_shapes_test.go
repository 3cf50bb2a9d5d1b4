package tasker_test

// The dynamic shapes of TestCrashRecovery, their handlers and their checks:
// a decision point and a batch whose workers checkpoint every item. See
// crash_test.go.
//
// decision: after "intake", "pick", a decision, chooses one or two of the branches b1, b2,
// b3 from the task's input (crashChoice); "merge", a deferred convergence,
// reads the results of those chosen and names them in its result.
//
// batch: "split", a batchable step, splits the input's crashItems(n) items
// (25–60) into batches of 10, each a worker "work_<batch id>", at most two
// running at once. A worker processes its items one at a time: it sleeps
// 0–2 ms, appends "<task id> <step name> <attempt> <item>" to the
// execution log in one write (the item is processed: that line is its
// effect), and saves the checkpoint {next item, sum so far}; an attempt
// resumes from the checkpoint. "total", a deferred convergence, sums the
// workers' results from BatchResults.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
)

var crashDynamicYAML = []string{`
name: decision
namespace_name: crash
version: "1.0.0"
description: "intake → pick, which chooses one or two of b1, b2, b3 → merge, which converges on those chosen"
steps:
  - name: intake
    handler: {callable: crash.decision}
    retry: &retry {max_attempts: 100, backoff: constant, backoff_base_ms: 3, max_backoff_ms: 3}
  - name: pick
    type: decision
    dependencies: [intake]
    handler: {callable: crash.decision}
    retry: *retry
  - {name: b1, handler: {callable: crash.decision}, dependencies: [pick], retry: *retry}
  - {name: b2, handler: {callable: crash.decision}, dependencies: [pick], retry: *retry}
  - {name: b3, handler: {callable: crash.decision}, dependencies: [pick], retry: *retry}
  - name: merge
    type: deferred_convergence
    handler: {callable: crash.decision}
    dependencies: [b1, b2, b3]
    retry: *retry
input_schema:
  type: object
  required: [n]
  properties:
    n: {type: integer}
`, `
name: batch
namespace_name: crash
version: "1.0.0"
description: "split → work_001 … (batches of 10, two at a time, checkpointing every item) → total"
steps:
  - name: split
    type: batchable
    handler: {callable: crash.batch}
    batch_config: {worker_template: work, batch_size: 10, parallelism: 2, failure_strategy: fail_fast}
    retry: &retry {max_attempts: 100, backoff: constant, backoff_base_ms: 3, max_backoff_ms: 3}
  - name: work
    type: batch_worker
    dependencies: [split]
    handler: {callable: crash.batch}
    retry: *retry
  - name: total
    type: deferred_convergence
    dependencies: [work]
    handler: {callable: crash.batch}
    retry: *retry
input_schema:
  type: object
  required: [n]
  properties:
    n: {type: integer}
`, crashDelegateYAML}

// The steps of the dynamic shapes, as crashDynamicYAML names them.
const (
	crashIntake      = "intake" // the decision shape's root
	crashDecision    = "pick"   // the decision
	crashMerge       = "merge"  // its deferred convergence
	crashSplit       = "split"  // the batchable step
	crashWorker      = "work"   // its worker template: the workers are work_001, work_002, …
	crashTotal       = "total"  // the batch's convergence
	crashBatchSize   = 10       // batch_config.batch_size
	crashParallelism = 2        // batch_config.parallelism
	crashItemDelay   = 2 * time.Millisecond
)

// crashBranches are the decision's branches, in template order.
var crashBranches = []string{"b1", "b2", "b3"}

// crashChoices are the decision's possible outcomes, in template order.
var crashChoices = [][]string{{"b1"}, {"b2"}, {"b3"}, {"b1", "b2"}, {"b2", "b3"}, {"b1", "b3"}}

// crashRound is how many tasks were submitted before task n of the same
// shape, so that the decision's choice and the batch's size vary within a
// shape.
func crashRound(n int) int { return n / (len(crashTemplateYAML) + len(crashDynamicYAML)) }

// crashChoice is the branches the decision of task n chooses.
func crashChoice(n int) []string { return crashChoices[crashRound(n)%len(crashChoices)] }

// crashItems is how many items the batch of task n has: 25 to 60.
func crashItems(n int) int { return 25 + crashRound(n)%36 }

// crashDecided is the decision's result: its choice, with its step and sum.
type crashDecided struct {
	tasker.Decision
	crashResult
}

// crashMerged is the decision's convergence's result: the branches whose
// results it read, and 1 + their sums.
type crashMerged struct {
	crashResult
	Branches []string `json:"branches"`
}

// crashSplitted is the batchable step's result: its batches, with its step
// and sum.
type crashSplitted struct {
	tasker.Batches
	crashResult
}

// crashProgress is a batch worker's checkpoint.
type crashProgress struct {
	Next int `json:"next"` // the next item to process
	Sum  int `json:"sum"`  // of the items before it
}

// crashHandlerFor is the handler of the callable "crash.<template name>".
// Every call is logged (crashTimed).
func crashHandlerFor(tmpl *tasker.Template, logf *os.File) tasker.HandlerFunc {
	switch tmpl.Name {
	case "decision":
		return crashTimed(logf, crashDecisionHandler())
	case "batch":
		return crashTimed(logf, crashBatchHandler(logf))
	case "delegate":
		return crashTimed(logf, crashDelegateHandler())
	}
	return crashTimed(logf, crashHandler(tmpl))
}

// crashDecisionHandler runs the decision shape's steps.
func crashDecisionHandler() tasker.HandlerFunc {
	return func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		if err := crashBegin(ctx); err != nil {
			return nil, err
		}
		var in crashInput
		if err := sc.DecodeInput(&in); err != nil {
			return nil, crashPermanent(err.Error())
		}
		switch name := sc.StepName(); name {
		case crashIntake:
			return crashResult{Step: name, Sum: 1 + in.N}, nil
		case crashDecision:
			r, err := crashDependency(sc, crashIntake)
			if err != nil {
				return nil, crashPermanent(err.Error())
			}
			return crashDecided{tasker.Decide(crashChoice(in.N)...), crashResult{Step: name, Sum: 1 + r.Sum}}, nil
		case crashMerge:
			out := crashMerged{crashResult: crashResult{Step: name, Sum: 1}}
			for _, b := range crashBranches {
				r, err := crashDependency(sc, b)
				if errors.Is(err, tasker.ErrNoResult) {
					continue
				} else if err != nil {
					return nil, err
				}
				out.Sum += r.Sum
				out.Branches = append(out.Branches, b)
			}
			return out, nil
		default:
			r, err := crashDependency(sc, crashDecision)
			if err != nil {
				return nil, crashPermanent(err.Error())
			}
			return crashResult{Step: name, Sum: 1 + r.Sum}, nil
		}
	}
}

// crashBatchHandler runs the batch shape's steps.
func crashBatchHandler(logf *os.File) tasker.HandlerFunc {
	return func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		if err := crashBegin(ctx); err != nil {
			return nil, err
		}
		switch name := sc.StepName(); name {
		case crashSplit:
			var in crashInput
			if err := sc.DecodeInput(&in); err != nil {
				return nil, crashPermanent(err.Error())
			}
			cs := tasker.CursorRanges(crashItems(in.N), crashBatchSize)
			return crashSplitted{tasker.CreateBatches(cs), crashResult{Step: name, Sum: 1 + in.N}}, nil
		case crashTotal:
			out := crashResult{Step: name}
			for _, br := range sc.BatchResults(crashWorker) {
				var r crashResult
				if br.State != tasker.StepComplete || json.Unmarshal(br.Result, &r) != nil || r.Step != br.Step {
					return nil, crashPermanent(fmt.Sprintf("batch worker %s: %s with result %s", br.Step, br.State, br.Result))
				}
				out.Sum += r.Sum
			}
			return out, nil
		}
		return crashWork(ctx, sc, logf)
	}
}

// crashWork is a batch worker: it processes its items from its checkpoint
// on, logging and checkpointing each.
func crashWork(ctx context.Context, sc *tasker.StepContext, logf *os.File) (any, error) {
	c, ok := sc.BatchCursor()
	if !ok {
		return nil, crashPermanent("no batch cursor")
	}
	cp := crashProgress{Next: c.StartCursor}
	if _, err := sc.Checkpoint(&cp); err != nil {
		return nil, crashPermanent(err.Error())
	}
	for i := cp.Next; i < c.EndCursor; i++ {
		if err := crashPause(ctx, crashItemDelay); err != nil {
			return nil, err
		}
		if err := crashLogLine(logf, fmt.Sprintf("%s %s %d item %d\n", sc.TaskID(), sc.StepName(), sc.Attempt(), i)); err != nil {
			return nil, err
		}
		cp = crashProgress{Next: i + 1, Sum: cp.Sum + i}
		if err := sc.SaveCheckpoint(cp); err != nil {
			return nil, err
		}
	}
	return crashResult{Step: sc.StepName(), Sum: cp.Sum}, nil
}

// crashDependency reads the result of dep, which must name dep.
func crashDependency(sc *tasker.StepContext, dep string) (crashResult, error) {
	var r crashResult
	if err := sc.DependencyResult(dep, &r); errors.Is(err, tasker.ErrNoResult) {
		return r, err
	} else if err != nil || r.Step != dep {
		return r, crashPermanent(fmt.Sprintf("dependency %s: %+v, %v", dep, r, err))
	}
	return r, nil
}

// crashDecisionTask checks a task of the decision shape: the decision
// completed once, with the choice crashChoice(n); exactly the chosen
// branches were created and completed, each started after the decision
// completed; the others are not created (StepNotCreated in Get, no trail,
// never run); the convergence started after every chosen branch completed
// and names exactly them.
func (v *crashVerifier) decisionTask(n int, task *tasker.Task, trail []store.Transition, completedAt map[string]int) {
	t := v.t
	t.Helper()
	chosen := crashChoice(n)
	if s := v.stepOf(task, crashIntake); s != nil {
		v.step(task, s, crashResult{Step: crashIntake, Sum: 1 + n})
	}
	if s := v.stepOf(task, crashDecision); s != nil {
		v.step(task, s, crashResult{Step: crashDecision, Sum: 2 + n})
		v.order(task, crashDecision, []string{crashIntake}, trail, completedAt)
		var d crashDecided
		if json.Unmarshal(s.Result, &d) != nil || !slices.Equal(d.Outcome.StepNames, chosen) {
			t.Errorf("task %s (crash-%d): the decision's result is %s, want it to choose %v", task.ID, n, s.Result, chosen)
		}
	}
	sum := 1
	for _, b := range crashBranches {
		s := v.stepOf(task, b)
		switch {
		case s == nil:
		case slices.Contains(chosen, b):
			v.step(task, s, crashResult{Step: b, Sum: 3 + n})
			v.order(task, b, []string{crashDecision}, trail, completedAt)
			sum += 3 + n
		case s.State != tasker.StepNotCreated || len(s.Transitions) > 0 || len(v.byStep[[2]string{task.ID, b}]) > 0:
			t.Errorf("task %s (crash-%d): branch %s, not chosen (%v), is %s with %d transitions and %d handler runs; want not created",
				task.ID, n, b, chosen, s.State, len(s.Transitions), len(v.byStep[[2]string{task.ID, b}]))
		}
	}
	if s := v.stepOf(task, crashMerge); s != nil {
		v.step(task, s, crashResult{Step: crashMerge, Sum: sum})
		v.order(task, crashMerge, chosen, trail, completedAt)
		var m crashMerged
		if json.Unmarshal(s.Result, &m) != nil || !slices.Equal(m.Branches, chosen) {
			t.Errorf("task %s (crash-%d): the convergence's result is %s, want it to name %v", task.ID, n, s.Result, chosen)
		}
	}
	v.stepNames(task, slices.Concat([]string{crashIntake, crashDecision}, crashBranches, []string{crashMerge}))
}

// crashBatchTask checks a task of the batch shape: the batchable step
// completed once with the batches of crashItems(n) items; Get shows one
// worker per batch, named by its batch id, and nothing else; each worker
// started after the batchable step completed, its items were processed
// as checkpoints says, and its sum is right; at most crashParallelism
// workers were in progress at once; the convergence started after every
// worker completed and sums every item.
func (v *crashVerifier) batchTask(n int, task *tasker.Task, trail []store.Transition, completedAt map[string]int) {
	t := v.t
	t.Helper()
	items := crashItems(n)
	cursors := tasker.CursorRanges(items, crashBatchSize)
	if s := v.stepOf(task, crashSplit); s != nil {
		v.step(task, s, crashResult{Step: crashSplit, Sum: 1 + n})
		var b crashSplitted
		if json.Unmarshal(s.Result, &b) != nil || !slices.Equal(b.Outcome.CursorConfigs, cursors) {
			t.Errorf("task %s (crash-%d): the batchable step's result is %s, want the batches %+v", task.ID, n, s.Result, cursors)
		}
	}
	var workers []string
	for _, c := range cursors {
		name := crashWorker + "_" + c.BatchID
		workers = append(workers, name)
		if s := v.stepOf(task, name); s != nil {
			v.step(task, s, crashResult{Step: name, Sum: (c.StartCursor + c.EndCursor - 1) * (c.EndCursor - c.StartCursor) / 2})
			v.order(task, name, []string{crashSplit}, trail, completedAt)
			v.checkpoints(task, s, c)
		}
	}
	if s := v.stepOf(task, crashTotal); s != nil {
		v.step(task, s, crashResult{Step: crashTotal, Sum: items * (items - 1) / 2})
		v.order(task, crashTotal, workers, trail, completedAt)
	}
	v.stepNames(task, slices.Concat([]string{crashSplit}, workers, []string{crashTotal}))
	running, most := 0, 0
	for _, tr := range trail {
		if strings.HasPrefix(tr.Step, crashWorker+"_") && crashClaim(tr.From, tr.To) {
			running++
		} else if strings.HasPrefix(tr.Step, crashWorker+"_") && tr.From == string(tasker.StepInProgress) && tr.To != tr.From {
			running--
		}
		most = max(most, running)
	}
	if most > crashParallelism {
		t.Errorf("task %s (crash-%d): %d batch workers were in progress at once, over the parallelism of %d", task.ID, n, most, crashParallelism)
	}
}

// checkpoints checks the items batch worker s of batch c processed, over
// all its attempts, against the checkpoints of its trail (one per item):
//
//   - attempt a resumes from the checkpoint its earlier attempts left (the
//     batch's start when none): it processes items next, next+1, … in order;
//   - it saved one checkpoint per item it processed, except that an attempt
//     a kill cut short may have processed one item more than it saved: the
//     item whose checkpoint the kill prevented, which the next attempt
//     processes again;
//   - the checkpoints of all attempts together cover the batch exactly.
//
// So every item is processed at least once and checkpointed exactly once,
// and processed a second time only when a kill fell between its processing
// and its checkpoint becoming durable: at most once per such kill.
func (v *crashVerifier) checkpoints(task *tasker.Task, s *tasker.Step, c tasker.BatchCursor) {
	t := v.t
	t.Helper()
	saved := make(map[int]int) // attempt → checkpoints it saved
	for _, tr := range s.Transitions {
		if tr.From == string(tasker.StepInProgress) && tr.To == tr.From {
			saved[tr.Attempt]++
		}
	}
	where := fmt.Sprintf("task %s worker %s (items %d–%d)", task.ID, s.Name, c.StartCursor, c.EndCursor-1)
	next := c.StartCursor
	for a := 1; a <= s.Attempts; a++ {
		at := crashAttempt{task.ID, s.Name, a}
		got := v.items[at]
		if len(got) > 0 && next > c.StartCursor {
			v.resumed++
		}
		for k, i := range got {
			if i != next+k {
				t.Errorf("%s: attempt %d processed items %v; want them in order from %d, its checkpoint", where, a, got, next)
				break
			}
		}
		_, killed := v.cut[at]
		switch extra := len(got) - saved[a]; {
		case extra == 1 && killed:
			v.redone++
		case extra != 0:
			t.Errorf("%s: attempt %d processed %d items and saved %d checkpoints (cut short by a kill: %v)", where, a, len(got), saved[a], killed)
		}
		next += saved[a]
	}
	if next != c.EndCursor {
		t.Errorf("%s: the checkpoints of its %d attempts cover items up to %d, want %d", where, s.Attempts, next-1, c.EndCursor-1)
	}
}

// stepNames checks that Get shows exactly the steps want, in that order.
func (v *crashVerifier) stepNames(task *tasker.Task, want []string) {
	v.t.Helper()
	var got []string
	for _, s := range task.Steps {
		got = append(got, s.Name)
	}
	if !slices.Equal(got, want) {
		v.t.Errorf("task %s (%s): Get shows the steps %v, want %v", task.ID, task.Name, got, want)
	}
}

// crashDynamicFigures is what a kill cut short of the dynamic shapes.
type crashDynamicFigures struct {
	decisionsCut  int // decisions in progress
	decisionsOpen int // decision tasks with branches created and the convergence not complete
	workersCut    int // batch workers in progress
	midBatch      int // of those, with a checkpoint saved: the next attempt resumes from it
	delegatesCut  int // delegate steps in progress, most of them waiting for their sub-task
}

// add counts step s of task, read after a kill.
func (f *crashDynamicFigures) add(task store.Task, s store.Step) {
	inProgress := s.State == string(tasker.StepInProgress)
	switch {
	case task.Name == "decision" && s.Name == crashDecision && inProgress:
		f.decisionsCut++
	case task.Name == "decision" && s.Name == crashMerge && s.State != string(tasker.StepComplete):
		f.decisionsOpen++ // the convergence exists once the decision chose
	case task.Name == "delegate" && s.Name == crashDelegate && inProgress:
		f.delegatesCut++
	case task.Name == "batch" && strings.HasPrefix(s.Name, crashWorker+"_") && inProgress:
		f.workersCut++
		if s.Checkpoint != nil {
			f.midBatch++
		}
	}
}

func (f crashDynamicFigures) String() string {
	return fmt.Sprintf("decisions: %d in progress, %d tasks between decision and convergence; batches: %d workers in progress, %d of them with a checkpoint; "+
		"sub-tasks: %d delegate steps in progress", f.decisionsCut, f.decisionsOpen, f.workersCut, f.midBatch, f.delegatesCut)
}
