package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/exampleutil"
	"github.com/gotasker/tasker/internal/exampleutil/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTemplatesAreTaskers(t *testing.T) {
	exampletest.SameAsTestdata(t, customerSuccessYAML, "customer_success_process_refund.yaml")
	exampletest.SameAsTestdata(t, paymentsYAML, "payments_process_refund.yaml")
}

// refundOf returns the payments refund of pay_T-1001 for amount.
func refundOf(amount string) string {
	return `{"refund_id":"re_pay_T-1001","payment_id":"pay_T-1001","amount":` + amount + `,"gateway":"stripe","status":"succeeded"}`
}

// TestRefund runs the delegation end to end on one worker: the
// customer_success task completes, and so does the one payments task its
// step started, within that step (exampletest checks the file holds no
// other task, and the order from the recorded times); the step's result
// carries that task's refund, which the customer is told of.
func TestRefund(t *testing.T) {
	paid := exampletest.Subtask{TemplateYAML: paymentsYAML, State: tasker.TaskComplete,
		Results: map[string]string{
			"validate_payment_eligibility": `{"payment_id":"pay_T-1001","refundable":true,"amount":42.5}`,
			"process_gateway_refund":       refundOf("42.5"),
			"update_payment_records":       `{"entry_id":"led_re_pay_T-1001","refund_id":"re_pay_T-1001","amount":42.5}`,
		},
		Inspect: checkDelegated}
	big := paid
	big.Results = map[string]string{"process_gateway_refund": refundOf("750")}
	exampletest.Check(t, run, customerSuccessYAML,
		exampletest.Case{Name: "refunds", State: tasker.TaskComplete,
			Results: map[string]string{
				"get_manager_approval": `{"required":false,"approved_by":"policy"}`,
				"update_ticket_status": `{"ticket_id":"T-1001","status":"resolved","refund_id":"re_pay_T-1001"}`,
				"notify_customer":      `{"to":"cus_42","message":"Your refund of 42.50 for ticket T-1001 succeeded (re_pay_T-1001)."}`,
			},
			Subtasks: map[string]exampletest.Subtask{"execute_refund_workflow": paid},
			Output: []string{`(?m)^task \S+ customer_success/process_refund: complete `,
				`(?m)^sub-task of step execute_refund_workflow:\ntask \S+ payments/process_refund: complete `,
				`(?m)^process_gateway_refund\s+complete\s+1\s`,
				`(?m)^notified cus_42: Your refund of 42\.50 for ticket T-1001 succeeded \(re_pay_T-1001\)\.$`}},
		exampletest.Case{Name: "a manager approves", Args: []string{"-amount", "750", "-workers", "4"}, State: tasker.TaskComplete,
			Results:  map[string]string{"get_manager_approval": `{"required":true,"approved_by":"manager"}`},
			Subtasks: map[string]exampletest.Subtask{"execute_refund_workflow": big},
			Output:   []string{`(?m)^notified cus_42: Your refund of 750\.00 for ticket T-1001 succeeded`}},
	)
}

// checkDelegated checks the link between the customer_success task and
// its payments task: who started it, with what input, what came back, and
// that the customer was notified only once the payments task had ended.
func checkDelegated(t *testing.T, parent, child *tasker.Task) {
	var d Delegation
	if err := json.Unmarshal(parent.Step("execute_refund_workflow").Result, &d); err != nil {
		t.Fatal(err)
	}
	var refund Refund
	if err := json.Unmarshal(child.Step("process_gateway_refund").Result, &refund); err != nil {
		t.Fatal(err)
	}
	if d.PaymentsTaskID != child.ID || d.Workflow != "payments/process_refund@2.1.0" || d.Refund != refund {
		t.Errorf("execute_refund_workflow's result %+v, want payments task %s's refund %+v", d, child.ID, refund)
	}
	if want := "task:" + parent.ID + "/execute_refund_workflow"; child.Namespace != "payments" || child.Initiator != want {
		t.Errorf("the sub-task is in %s, initiated by %s; want payments, %s", child.Namespace, child.Initiator, want)
	}
	var in PaymentRequest
	if err := json.Unmarshal(child.Context, &in); err != nil || in.PaymentID != "pay_T-1001" || in.RefundReason != "damaged on arrival" {
		t.Errorf("the sub-task's input %s (%v)", child.Context, err)
	}
	notify := parent.Step("notify_customer")
	if began := starts(notify); len(began) != 1 || began[0].Before(child.FinishedAt) {
		t.Errorf("notify_customer began at %v, want once, after the payments task ended at %s", began, child.FinishedAt)
	}
}

// starts returns when each attempt of s began, from its trail.
func starts(s *tasker.Step) []time.Time {
	var at []time.Time
	for _, tr := range s.Transitions {
		if tr.To == string(tasker.StepInProgress) && tr.From != string(tasker.StepInProgress) {
			at = append(at, tr.At)
		}
	}
	return at
}

// TestDecline: the gateway declines for good, so the payments task fails;
// each of execute_refund_workflow's 3 attempts retries that one payments
// task, whose refund step runs once per attempt, and the customer_success
// task ends in error, its last steps never run.
func TestDecline(t *testing.T) {
	exampletest.Check(t, run, customerSuccessYAML,
		exampletest.Case{Name: "declined", Args: []string{"-decline"}, State: tasker.TaskFailed,
			Steps: map[string]tasker.StepState{"validate_refund_request": tasker.StepComplete, "check_refund_policy": tasker.StepComplete,
				"get_manager_approval": tasker.StepComplete, "execute_refund_workflow": tasker.StepFailed,
				"update_ticket_status": tasker.StepPending, "notify_customer": tasker.StepPending},
			Attempts: map[string]int{"execute_refund_workflow": 3},
			Subtasks: map[string]exampletest.Subtask{"execute_refund_workflow": {TemplateYAML: paymentsYAML, State: tasker.TaskFailed,
				Steps: map[string]tasker.StepState{"validate_payment_eligibility": tasker.StepComplete,
					"process_gateway_refund": tasker.StepFailed, "update_payment_records": tasker.StepPending,
					"notify_customer": tasker.StepPending},
				Inspect: checkRetriedChild}},
			Output: []string{`(?m)^task \S+ customer_success/process_refund: error `,
				`(?m)^task \S+ payments/process_refund: error `,
				`last error \(attempt 3\): retryable_error \[REFUND_FAILED\]: payments/process_refund task \S+ ended in error: ` +
					`process_gateway_refund: stripe declined the refund of 42\.50 on pay_T-1001`,
				`permanent_error \[REFUND_DECLINED\]`, `(?m)^refund failed after 3 attempts: `}},
	)
}

// checkRetriedChild checks that the payments task's refund step ran once
// per attempt of the step that waited for it, each run within that
// attempt: after it began, before the next began.
func checkRetriedChild(t *testing.T, parent, child *tasker.Task) {
	waits, runs := starts(parent.Step("execute_refund_workflow")), starts(child.Step("process_gateway_refund"))
	if len(waits) != 3 || len(runs) != 3 {
		t.Fatalf("execute_refund_workflow began %d times, process_gateway_refund %d; want 3 and 3", len(waits), len(runs))
	}
	for i := range runs {
		if runs[i].Before(waits[i]) || i+1 < len(waits) && waits[i+1].Before(runs[i]) {
			t.Errorf("the refund's run %d at %s is not within attempt %d (from %s)", i+1, runs[i], i+1, waits[i])
		}
	}
}

// TestMemoryStore runs both outcomes on the memory store: the exit
// status, and the payments task the output shows is the one the step's
// result names.
func TestMemoryStore(t *testing.T) {
	for _, c := range []struct {
		args  []string
		code  int
		state string
	}{{[]string{"-store", "memory"}, 0, "complete"}, {[]string{"-store", "memory", "-decline"}, 1, "error"}} {
		var out bytes.Buffer
		err := run(t.Context(), c.args, &out)
		if code := exampleutil.ExitCode("cross_namespace", err, io.Discard); code != c.code {
			t.Errorf("%v: exit %d (%v), want %d", c.args, code, err, c.code)
		}
		m := regexp.MustCompile(`(?m)^task \S+ customer_success/process_refund: (\S+) \(stored in memory\)\n(?s:.*)` +
			`^execute_refund_workflow\s+\S+\s+\d+\s.*\n(?s:.*)^sub-task of step execute_refund_workflow:\n` +
			`task (\S+) payments/process_refund: (\S+) `).FindStringSubmatch(out.String())
		if m == nil || m[1] != c.state || m[3] != c.state {
			t.Fatalf("%v: output lacks both tasks in %s:\n%s", c.args, c.state, out.String())
		}
		if c.code == 0 && !regexp.MustCompile(`(?m)^execute_refund_workflow\s+complete\s+1\s.*"payments_task_id":"`+m[2]+`"`).MatchString(out.String()) {
			t.Errorf("execute_refund_workflow's result does not name payments task %s:\n%s", m[2], out.String())
		}
	}
}

// TestUsage: a bad amount or worker count is a usage error, exit 2.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-amount", "0"}, {"-workers", "0"}} {
		var out bytes.Buffer
		err := run(t.Context(), append([]string{"-store", "memory"}, args...), &out)
		var usage *exampleutil.UsageError
		if !errors.As(err, &usage) || exampleutil.ExitCode("cross_namespace", err, io.Discard) != 2 {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
