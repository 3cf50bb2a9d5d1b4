// Command conditional_approval runs Tasker's conditional approval workflow
// once: validate_request checks an expense, routing_decision (a decision
// point) creates the approvals its amount needs — under 1,000
// auto_approve; under 5,000 manager_approval; otherwise manager_approval
// and finance_review — and finalize_approval (a deferred convergence)
// runs after whichever were created. It prints the outcome and every
// step, the approvals not created showing as not_created:
//
//	go run ./examples/conditional_approval                  # 2,500: a manager
//	go run ./examples/conditional_approval -amount 750      # auto-approved
//	go run ./examples/conditional_approval -amount 12000    # manager and finance
//	go run ./examples/conditional_approval -amount 0        # fails validation
//	go run ./examples/conditional_approval -amount 9000 -fail finance_review
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/exampleutil"
)

//go:embed template.yaml
var templateYAML []byte

func main() { exampleutil.Main("conditional_approval", run) }

func run(ctx context.Context, args []string, out io.Writer) error {
	const ns = "ConditionalApproval::"
	ex := exampleutil.Example{
		Name: "conditional_approval", TemplateFile: "examples/conditional_approval/template.yaml",
		TemplateYAML: templateYAML, Flags: requestFlags, Summary: printOutcome,
		Handlers: map[string]tasker.StepHandler{
			ns + "ValidateRequestHandler":  tasker.HandlerFunc(validateRequest),
			ns + "RoutingDecisionHandler":  tasker.HandlerFunc(routingDecision),
			ns + "ApprovalHandler":         tasker.HandlerFunc(approve),
			ns + "FinalizeApprovalHandler": tasker.HandlerFunc(finalizeApproval),
		},
	}
	return ex.Run(ctx, args, out)
}

// requestFlags declares -amount, -requester and -purpose, the task input.
func requestFlags(fs *flag.FlagSet) func() (any, error) {
	var in Request
	fs.Float64Var(&in.Amount, "amount", 2500, "the amount to approve: under 1000 auto-approved, under 5000 a manager, else a manager and finance")
	fs.StringVar(&in.Requester, "requester", "ada@example.com", "who asks")
	fs.StringVar(&in.Purpose, "purpose", "conference travel", "what for")
	return func() (any, error) { return in, nil }
}

// printOutcome prints the approval steps not created and, once
// finalize_approval completed, the outcome.
func printOutcome(w io.Writer, t *tasker.Task) {
	var skipped []string
	for _, name := range approvalSteps {
		if s := t.Step(name); s != nil && s.State == tasker.StepNotCreated {
			skipped = append(skipped, name)
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintf(w, "not created: %s\n", strings.Join(skipped, ", "))
	}
	var o Outcome
	if s := t.Step("finalize_approval"); s != nil && s.State == tasker.StepComplete && json.Unmarshal(s.Result, &o) == nil {
		fmt.Fprintf(w, "%s: %.2f, route %s, by %s\n", o.Status, o.Amount, o.Route, strings.Join(o.ApprovedBy, " and "))
	}
}
