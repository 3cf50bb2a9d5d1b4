package main

import (
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/exampleutil/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// notCreated returns the states of approval steps the decision did not
// create.
func notCreated(steps ...string) map[string]tasker.StepState {
	m := make(map[string]tasker.StepState, len(steps))
	for _, s := range steps {
		m[s] = tasker.StepNotCreated
	}
	return m
}

// TestRoutes runs each route, and the amounts at its thresholds: the
// decision creates exactly the approvals the amount needs, the others are
// never created (and never ran), and finalize_approval runs after the
// created ones (exampletest checks the order from the recorded times) and
// names them.
func TestRoutes(t *testing.T) {
	exampletest.Check(t, run, templateYAML,
		exampletest.Case{Name: "auto", Args: []string{"-amount", "750"}, State: tasker.TaskComplete,
			Steps: notCreated("manager_approval", "finance_review"),
			Results: map[string]string{
				"routing_decision":  `{"decision_point_outcome":{"type":"create_steps","step_names":["auto_approve"]},"route":"auto","amount":750}`,
				"auto_approve":      `{"step":"auto_approve","approver":"system","approved":true,"amount":750}`,
				"finalize_approval": `{"status":"approved","route":"auto","amount":750,"approvals":["auto_approve"],"approved_by":["system"]}`,
			},
			Output: []string{`(?m)^manager_approval\s+not_created\s+0\s+-\s+-$`, `(?m)^finance_review\s+not_created\s+0\s+-\s+-$`,
				`(?m)^not created: manager_approval, finance_review$`, `(?m)^approved: 750\.00, route auto, by system$`}},
		exampletest.Case{Name: "just under 1000", Args: []string{"-amount", "999.99"}, State: tasker.TaskComplete,
			Steps:   notCreated("manager_approval", "finance_review"),
			Results: map[string]string{"finalize_approval": `{"status":"approved","route":"auto","amount":999.99,"approvals":["auto_approve"],"approved_by":["system"]}`}},
		exampletest.Case{Name: "manager at 1000", Args: []string{"-amount", "1000"}, State: tasker.TaskComplete,
			Steps:   notCreated("auto_approve", "finance_review"),
			Results: map[string]string{"finalize_approval": `{"status":"approved","route":"manager","amount":1000,"approvals":["manager_approval"],"approved_by":["manager"]}`}},
		exampletest.Case{Name: "manager by default", State: tasker.TaskComplete,
			Steps: notCreated("auto_approve", "finance_review"),
			Results: map[string]string{
				"manager_approval":  `{"step":"manager_approval","approver":"manager","approved":true,"amount":2500}`,
				"finalize_approval": `{"status":"approved","route":"manager","amount":2500,"approvals":["manager_approval"],"approved_by":["manager"]}`,
			},
			Output: []string{`(?m)^auto_approve\s+not_created\s+0\s+-\s+-$`, `(?m)^approved: 2500\.00, route manager, by manager$`}},
		exampletest.Case{Name: "manager and finance at 5000", Args: []string{"-amount", "5000"}, State: tasker.TaskComplete,
			Steps: notCreated("auto_approve"),
			Results: map[string]string{
				"routing_decision": `{"decision_point_outcome":{"type":"create_steps","step_names":["manager_approval","finance_review"]},
					"route":"manager_and_finance","amount":5000}`,
				"finalize_approval": `{"status":"approved","route":"manager_and_finance","amount":5000,
					"approvals":["manager_approval","finance_review"],"approved_by":["manager","finance"]}`,
			},
			Output: []string{`(?m)^auto_approve\s+not_created\s+0\s+-\s+-$`, `(?m)^finance_review\s+complete\s+1\s`,
				`(?m)^approved: 5000\.00, route manager_and_finance, by manager and finance$`}},
	)
}

// TestFailures: an invalid request ends the task before the decision, so
// no approval is created; an approval that fails for good ends it with
// finalize_approval created (a deferred convergence exists once one of its
// dependencies does) but never run.
func TestFailures(t *testing.T) {
	exampletest.Check(t, run, templateYAML,
		exampletest.Case{Name: "invalid", Args: []string{"-amount", "0", "-purpose", ""}, State: tasker.TaskFailed,
			Steps: map[string]tasker.StepState{"validate_request": tasker.StepFailed, "routing_decision": tasker.StepPending,
				"auto_approve": tasker.StepNotCreated, "manager_approval": tasker.StepNotCreated,
				"finance_review": tasker.StepNotCreated, "finalize_approval": tasker.StepNotCreated},
			Output: []string{`validation_error \[INVALID_REQUEST\]: amount must be positive, got 0\.00; purpose is empty`}},
		exampletest.Case{Name: "finance fails", Args: []string{"-amount", "9000", "-fail", "finance_review"}, State: tasker.TaskFailed,
			Steps: map[string]tasker.StepState{"routing_decision": tasker.StepComplete, "auto_approve": tasker.StepNotCreated,
				"finance_review": tasker.StepFailed, "finalize_approval": tasker.StepPending},
			Output: []string{`permanent_error \[FAILED_ON_PURPOSE\]`, `(?m)^not created: auto_approve$`}},
	)
}
