package tasker_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/sqlite"
)

// approvalYAML is the guide's conditional approval: a decision routes an
// amount to one or two approvals, and a deferred convergence finalizes
// after whichever ran.
const approvalYAML = `
name: approval
namespace_name: test
version: "1.0.0"
steps:
  - {name: validate, handler: {callable: t.validate}}
  - name: route
    type: decision
    dependencies: [validate]
    handler: {callable: t.route}
  - {name: auto_approve, dependencies: [route], handler: {callable: t.approve}}
  - {name: manager_approval, dependencies: [route], handler: {callable: t.approve}, retry: {backoff: constant, backoff_base_ms: 1}}
  - {name: finance_review, dependencies: [route], handler: {callable: t.approve}}
  - name: finalize
    type: deferred_convergence
    dependencies: [auto_approve, manager_approval, finance_review]
    handler: {callable: t.finalize}
`

var approvals = []string{"auto_approve", "manager_approval", "finance_review"}

// route decides by the input's amount, or returns the input's "choose"
// verbatim when it has one.
var route = tasker.HandlerFunc(func(_ context.Context, sc *tasker.StepContext) (any, error) {
	var in struct {
		Amount float64  `json:"amount"`
		Choose []string `json:"choose"`
		None   bool     `json:"none"`
	}
	if err := sc.DecodeInput(&in); err != nil {
		return nil, err
	}
	switch {
	case in.None:
		return tasker.NoBranches(), nil
	case in.Choose != nil:
		return tasker.Decide(in.Choose...), nil
	case in.Amount < 1000:
		return tasker.Decide("auto_approve"), nil
	case in.Amount < 5000:
		return tasker.Decide("manager_approval"), nil
	}
	return map[string]any{"decision_point_outcome": tasker.Decide("manager_approval", "finance_review").Outcome,
		"amount": in.Amount}, nil
})

// finalize lists the approvals whose results it can read.
var finalize = tasker.HandlerFunc(func(_ context.Context, sc *tasker.StepContext) (any, error) {
	var got []string
	for _, a := range approvals {
		var by string
		switch err := sc.DependencyResult(a, &by); {
		case err == nil:
			got = append(got, by)
		case !errors.Is(err, tasker.ErrNoResult):
			return nil, err
		}
	}
	return got, nil
})

func approvalHandlers(approve tasker.HandlerFunc) map[string]tasker.StepHandler {
	if approve == nil {
		approve = func(_ context.Context, sc *tasker.StepContext) (any, error) { return sc.StepName(), nil }
	}
	return map[string]tasker.StepHandler{"t.validate": echoStep("validate"), "t.route": route,
		"t.approve": approve, "t.finalize": finalize}
}

func submitApproval(t *testing.T, eng *tasker.Engine, input any) *tasker.Task {
	t.Helper()
	return submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "approval", Context: input})
}

// checkStates checks each named step's state.
func checkStates(t *testing.T, task *tasker.Task, want map[string]tasker.StepState) {
	t.Helper()
	for name, st := range want {
		if got := step(t, task, name).State; got != st {
			t.Errorf("%s: %s, want %s", name, got, st)
		}
	}
}

// checkAfter checks that step b started after step a ended.
func checkAfter(t *testing.T, task *tasker.Task, a, b string) {
	t.Helper()
	if sa, sb := step(t, task, a), step(t, task, b); sb.StartedAt.Before(sa.FinishedAt) {
		t.Errorf("%s started at %v, before %s finished at %v", b, sb.StartedAt, a, sa.FinishedAt)
	}
}

// TestDecisionRoutes: a decision creates the branches it chose and nothing
// else; the deferred convergence runs after exactly those and reads their
// results; the branches not chosen are shown as never created.
func TestDecisionRoutes(t *testing.T) {
	for _, tc := range []struct {
		amount float64
		chosen []string
	}{
		{500, []string{"auto_approve"}},
		{2500, []string{"manager_approval"}},
		{7000, []string{"manager_approval", "finance_review"}},
	} {
		eachStore(t, func(t *testing.T, st store.Store) {
			eng := startEngine(t, st, approvalHandlers(nil), mustParse(t, approvalYAML))
			task := submitApproval(t, eng, map[string]any{"amount": tc.amount})
			if task.State != tasker.TaskComplete {
				t.Fatalf("amount %v: %s, want complete", tc.amount, stateOf(task, nil))
			}
			for _, a := range approvals {
				want := tasker.StepNotCreated
				if slices.Contains(tc.chosen, a) {
					want = tasker.StepComplete
					checkAfter(t, task, "route", a)
					checkAfter(t, task, a, "finalize")
				}
				checkStates(t, task, map[string]tasker.StepState{a: want})
			}
			if got, want := string(step(t, task, "finalize").Result), `["`+strings.Join(tc.chosen, `","`)+`"]`; got != want {
				t.Errorf("finalize read %s, want %s", got, want)
			}
		})
	}
}

// TestDecisionNoBranches: a decision that chooses none creates nothing
// downstream, not even the convergence, and the task completes.
func TestDecisionNoBranches(t *testing.T) {
	eng := startEngine(t, newMemory(t), approvalHandlers(nil), mustParse(t, approvalYAML))
	task := submitApproval(t, eng, map[string]any{"none": true})
	if task.State != tasker.TaskComplete {
		t.Fatalf("task: %s, want complete", stateOf(task, nil))
	}
	checkStates(t, task, map[string]tasker.StepState{"route": tasker.StepComplete, "auto_approve": tasker.StepNotCreated,
		"manager_approval": tasker.StepNotCreated, "finance_review": tasker.StepNotCreated, "finalize": tasker.StepNotCreated})
}

// TestDecisionInvalidChoice: choosing a step that does not depend on the
// decision fails it for good, naming the step; nothing is created.
func TestDecisionInvalidChoice(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := startEngine(t, st, approvalHandlers(nil), mustParse(t, approvalYAML))
		task := submitApproval(t, eng, map[string]any{"choose": []string{"auto_approve", "finalize"}})
		r := step(t, task, "route")
		if task.State != tasker.TaskFailed || r.State != tasker.StepFailed || r.Attempts != 1 {
			t.Fatalf("task %s; want route failed after 1 attempt", stateOf(task, nil))
		}
		if f := r.LastError; f == nil || f.Code != tasker.CodeDecisionInvalid || f.Retryable || !strings.Contains(f.Message, `"finalize"`) {
			t.Errorf("route's failure = %+v, want non-retryable DECISION_INVALID naming finalize", f)
		}
		checkStates(t, task, map[string]tasker.StepState{"auto_approve": tasker.StepNotCreated, "finalize": tasker.StepNotCreated})
	})
}

// TestDecisionBranchRetriesAndFails: a branch the decision created retries
// like any step; one that fails for good fails the task, and the
// convergence never runs.
func TestDecisionBranchRetriesAndFails(t *testing.T) {
	var calls atomic.Int32
	flaky := tasker.HandlerFunc(func(_ context.Context, sc *tasker.StepContext) (any, error) {
		if sc.StepName() == "manager_approval" && calls.Add(1) == 1 {
			return nil, errors.New("manager unavailable")
		}
		if sc.StepName() == "finance_review" {
			return nil, &tasker.StepError{Message: "over budget", Type: tasker.ErrorPermanent}
		}
		return sc.StepName(), nil
	})
	eng := startEngine(t, newMemory(t), approvalHandlers(flaky), mustParse(t, approvalYAML))
	retried := submitApproval(t, eng, map[string]any{"amount": 2500})
	if retried.State != tasker.TaskComplete || step(t, retried, "manager_approval").Attempts != 2 {
		t.Errorf("retried branch: %s, want complete after 2 attempts of manager_approval", stateOf(retried, nil))
	}
	failed := submitApproval(t, eng, map[string]any{"amount": 7000})
	if failed.State != tasker.TaskFailed {
		t.Fatalf("failing branch: %s, want error", stateOf(failed, nil))
	}
	checkStates(t, failed, map[string]tasker.StepState{"finance_review": tasker.StepFailed, "finalize": tasker.StepPending,
		"auto_approve": tasker.StepNotCreated})
}

const nestedYAML = `
name: nested
namespace_name: test
version: "1.0.0"
steps:
  - {name: begin, handler: {callable: t.leaf}}
  - {name: outer, type: decision, dependencies: [begin], handler: {callable: t.pick}}
  - {name: small, dependencies: [outer], handler: {callable: t.leaf}}
  - {name: inner, type: decision, dependencies: [outer], handler: {callable: t.pick}}
  - {name: left, dependencies: [inner], handler: {callable: t.leaf}}
  - {name: right, dependencies: [inner], handler: {callable: t.leaf}}
  - {name: after_right, dependencies: [right], handler: {callable: t.leaf}}
  - {name: done, type: deferred_convergence, dependencies: [small, left, after_right], handler: {callable: t.leaf}}
`

// TestNestedDecisions: a decision created by a decision decides its own
// branches; the convergence waits for the inner decision before it runs.
func TestNestedDecisions(t *testing.T) {
	pick := tasker.HandlerFunc(func(_ context.Context, sc *tasker.StepContext) (any, error) {
		if sc.StepName() == "outer" {
			return tasker.Decide("inner"), nil
		}
		return tasker.Decide("right"), nil
	})
	leaf := tasker.HandlerFunc(func(_ context.Context, sc *tasker.StepContext) (any, error) { return sc.StepName(), nil })
	eng := startEngine(t, newMemory(t), map[string]tasker.StepHandler{"t.pick": pick, "t.leaf": leaf}, mustParse(t, nestedYAML))
	task := submitAndWait(t, eng, tasker.SubmitRequest{Namespace: "test", Name: "nested"})
	if task.State != tasker.TaskComplete {
		t.Fatalf("task: %s, want complete", stateOf(task, nil))
	}
	checkStates(t, task, map[string]tasker.StepState{"small": tasker.StepNotCreated, "left": tasker.StepNotCreated,
		"right": tasker.StepComplete, "after_right": tasker.StepComplete, "done": tasker.StepComplete})
	checkAfter(t, task, "inner", "right")
	checkAfter(t, task, "after_right", "done")
}

// TestTwoDecisionParentsRefused: a step may depend on one decision only.
func TestTwoDecisionParentsRefused(t *testing.T) {
	eng, err := tasker.New(newMemory(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = eng.AddTemplates(mustParse(t, `
name: two
namespace_name: test
version: "1.0.0"
steps:
  - {name: r, handler: {callable: t.x}}
  - {name: a, type: decision, dependencies: [r], handler: {callable: t.x}}
  - {name: b, type: decision, dependencies: [r], handler: {callable: t.x}}
  - {name: c, dependencies: [a, b], handler: {callable: t.x}}
`))
	if !errors.Is(err, tasker.ErrInvalidTemplate) || !strings.Contains(err.Error(), `step "c" depends on 2 decision steps`) {
		t.Errorf("AddTemplates = %v, want ErrInvalidTemplate naming step c", err)
	}
}

// TestDecisionSurvivesRestart: a decision's outcome and the steps it
// created are durable; a new engine on the file goes on with the chosen
// branch and does not run the decision again.
func TestDecisionSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasker.db")
	st, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var routed atomic.Int32
	counted := tasker.HandlerFunc(func(ctx context.Context, sc *tasker.StepContext) (any, error) {
		routed.Add(1)
		return route(ctx, sc)
	})
	started := make(chan struct{}, 1)
	blocking := tasker.HandlerFunc(func(ctx context.Context, _ *tasker.StepContext) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	handlers := approvalHandlers(blocking)
	handlers["t.route"] = counted
	first := startEngineNoCleanupWith(t, st, handlers, approvalYAML)
	id, err := first.Submit(context.Background(), tasker.SubmitRequest{Namespace: "test", Name: "approval", Context: map[string]any{"amount": 2500}})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	if err := first.StopAndCancel(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	handlers = approvalHandlers(nil)
	handlers["t.route"] = counted
	second := startEngine(t, st, handlers, mustParse(t, approvalYAML))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	task, err := second.Wait(ctx, id)
	if err != nil || task.State != tasker.TaskComplete {
		t.Fatalf("after restart: %s, want complete", stateOf(task, err))
	}
	if n := routed.Load(); n != 1 {
		t.Errorf("route ran %d times, want once", n)
	}
	checkStates(t, task, map[string]tasker.StepState{"manager_approval": tasker.StepComplete,
		"auto_approve": tasker.StepNotCreated, "finance_review": tasker.StepNotCreated, "finalize": tasker.StepComplete})
	if got := string(step(t, task, "finalize").Result); got != `["manager_approval"]` {
		t.Errorf("finalize read %s", got)
	}
}

// startEngineNoCleanupWith starts an engine on st with handlers and the
// template yaml, for a test that stops it itself.
func startEngineNoCleanupWith(t *testing.T, st store.Store, handlers map[string]tasker.StepHandler, yaml string) *tasker.Engine {
	t.Helper()
	eng, err := tasker.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	registerAll(t, eng, handlers)
	if err := eng.AddTemplates(mustParse(t, yaml)); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return eng
}
