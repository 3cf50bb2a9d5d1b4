// Command cross_namespace runs Tasker's cross-namespace refund once: a
// customer_success/process_refund task validates a refund request, checks
// the refund policy and gets a manager's approval when the amount needs
// one; its step execute_refund_workflow then delegates the refund to a
// payments/process_refund task (a sub-task, StepContext.Subtask) and waits
// for it without holding a worker, before it resolves the ticket and
// notifies the customer of the refund's outcome. The templates are
// testdata/templates/tasker/customer_success_process_refund.yaml and
// payments_process_refund.yaml, copied here. It prints the task's outcome
// and steps, then the payments task's:
//
//	go run ./examples/cross_namespace                 # 42.50, no approval needed
//	go run ./examples/cross_namespace -amount 750     # a manager approves
//	go run ./examples/cross_namespace -decline        # the gateway declines: error, exit 1
//	go run ./examples/cross_namespace -workers 4 -store memory
//
// With -decline the payments task fails at process_gateway_refund; each of
// execute_refund_workflow's 3 attempts retries that same payments task
// (never a second one), so the run takes about 3 s of backoff before the
// customer_success task ends in error.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/exampleutil"
)

var (
	//go:embed customer_success.yaml
	customerSuccessYAML []byte
	//go:embed payments.yaml
	paymentsYAML []byte
)

func main() { exampleutil.Main("cross_namespace", run) }

func run(ctx context.Context, args []string, out io.Writer) error {
	p := &payments{}
	cfg := &tasker.Config{Workers: 1}
	const cs, pay = "CustomerSuccess::StepHandlers::", "Payments::StepHandlers::"
	ex := exampleutil.Example{
		Name: "cross_namespace", TemplateFile: "examples/cross_namespace/customer_success.yaml", TemplateYAML: customerSuccessYAML,
		Subtemplates: []exampleutil.Subtemplate{{File: "examples/cross_namespace/payments.yaml", YAML: paymentsYAML}},
		Config:       cfg,
		Flags: func(fs *flag.FlagSet) func() (any, error) {
			fs.BoolVar(&p.decline, "decline", false, "the payment gateway declines the refund, for good: the payments task fails, and so does the refund")
			fs.IntVar(&cfg.Workers, "workers", 1, "the engine's workers; with 1, the waiting customer_success step holds none")
			input := requestFlags(fs)
			return func() (any, error) {
				if cfg.Workers < 1 {
					return nil, fmt.Errorf("-workers must be at least 1, not %d", cfg.Workers)
				}
				return input()
			}
		},
		Summary: printOutcome,
		Handlers: map[string]tasker.StepHandler{
			cs + "ValidateRefundRequestHandler":       tasker.HandlerFunc(validateRefundRequest),
			cs + "CheckRefundPolicyHandler":           tasker.HandlerFunc(checkRefundPolicy),
			cs + "GetManagerApprovalHandler":          tasker.HandlerFunc(getManagerApproval),
			cs + "ExecuteRefundWorkflowHandler":       tasker.HandlerFunc(executeRefundWorkflow),
			cs + "UpdateTicketStatusHandler":          tasker.HandlerFunc(updateTicketStatus),
			cs + "NotifyCustomerHandler":              tasker.HandlerFunc(notifyCustomer),
			pay + "ValidatePaymentEligibilityHandler": tasker.HandlerFunc(p.validatePaymentEligibility),
			pay + "ProcessGatewayRefundHandler":       tasker.HandlerFunc(p.processGatewayRefund),
			pay + "UpdatePaymentRecordsHandler":       tasker.HandlerFunc(p.updatePaymentRecords),
			pay + "NotifyCustomerHandler":             tasker.HandlerFunc(p.sendReceipt),
		},
	}
	return ex.Run(ctx, args, out)
}

// requestFlags declares -ticket, -customer, -amount and -reason, the task
// input.
func requestFlags(fs *flag.FlagSet) func() (any, error) {
	var in Request
	fs.StringVar(&in.TicketID, "ticket", "T-1001", "the support ticket asking for the refund")
	fs.StringVar(&in.CustomerID, "customer", "cus_42", "the customer")
	fs.Float64Var(&in.RefundAmount, "amount", 42.50, "the amount to refund; from 500 on, a manager approves")
	fs.StringVar(&in.Reason, "reason", "damaged on arrival", "why")
	return func() (any, error) {
		if in.RefundAmount <= 0 {
			return nil, fmt.Errorf("-amount must be positive, not %.2f", in.RefundAmount)
		}
		return in, nil
	}
}

// printOutcome prints what the customer was told, or why the refund did
// not go through.
func printOutcome(w io.Writer, t *tasker.Task) {
	var n Notice
	if s := t.Step("notify_customer"); s != nil && s.State == tasker.StepComplete && json.Unmarshal(s.Result, &n) == nil {
		fmt.Fprintf(w, "\nnotified %s: %s\n", n.To, n.Message)
		return
	}
	if s := t.Step("execute_refund_workflow"); s != nil && s.State == tasker.StepFailed && s.LastError != nil {
		fmt.Fprintf(w, "\nrefund failed after %d attempts: %s\n", s.Attempts, s.LastError.Message)
	}
}
