package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gotasker/tasker"
)

// Request is the task input: an expense to approve.
type Request struct {
	Amount    float64 `json:"amount"`
	Requester string  `json:"requester"`
	Purpose   string  `json:"purpose"`
}

// The routes routing_decision chooses between, by amount.
const (
	RouteAuto              = "auto"                // under auto_approve_below
	RouteManager           = "manager"             // under manager_only_below
	RouteManagerAndFinance = "manager_and_finance" // the rest
)

// approvalSteps are the steps routing_decision chooses among, in template
// order.
var approvalSteps = []string{"auto_approve", "manager_approval", "finance_review"}

// Thresholds is routing_decision's handler.initialization.
type Thresholds struct {
	AutoApproveBelow float64 `json:"auto_approve_below"`
	ManagerOnlyBelow float64 `json:"manager_only_below"`
}

// Routing is routing_decision's result: the decision point outcome that
// creates the chosen approval steps, with the route and amount beside it.
type Routing struct {
	tasker.Decision
	Route  string  `json:"route"`
	Amount float64 `json:"amount"`
}

// Approval is the result of an approval step.
type Approval struct {
	Step     string  `json:"step"`
	Approver string  `json:"approver"`
	Approved bool    `json:"approved"`
	Amount   float64 `json:"amount"`
}

// Outcome is finalize_approval's result: the approvals it found, in
// template order.
type Outcome struct {
	Status     string   `json:"status"`
	Route      string   `json:"route"`
	Amount     float64  `json:"amount"`
	Approvals  []string `json:"approvals"`
	ApprovedBy []string `json:"approved_by"`
}

// validateRequest checks the request: a positive amount, a requester and
// a purpose; anything else is a validation error, not retried.
func validateRequest(_ context.Context, step *tasker.StepContext) (any, error) {
	var in Request
	if err := step.DecodeInput(&in); err != nil {
		return nil, err
	}
	var problems []string
	if in.Amount <= 0 {
		problems = append(problems, fmt.Sprintf("amount must be positive, got %.2f", in.Amount))
	}
	if strings.TrimSpace(in.Requester) == "" {
		problems = append(problems, "requester is empty")
	}
	if strings.TrimSpace(in.Purpose) == "" {
		problems = append(problems, "purpose is empty")
	}
	if len(problems) > 0 {
		return nil, &tasker.StepError{Type: tasker.ErrorValidation, Code: "INVALID_REQUEST",
			Message: strings.Join(problems, "; ")}
	}
	return in, nil
}

// routingDecision chooses the approvals the validated amount needs.
func routingDecision(_ context.Context, step *tasker.StepContext) (any, error) {
	var th Thresholds
	var req Request
	if err := errors.Join(step.Initialization(&th), step.DependencyResult("validate_request", &req)); err != nil {
		return nil, err
	}
	r := Routing{Amount: req.Amount}
	switch {
	case req.Amount < th.AutoApproveBelow:
		r.Route, r.Decision = RouteAuto, tasker.Decide("auto_approve")
	case req.Amount < th.ManagerOnlyBelow:
		r.Route, r.Decision = RouteManager, tasker.Decide("manager_approval")
	default:
		r.Route, r.Decision = RouteManagerAndFinance, tasker.Decide("manager_approval", "finance_review")
	}
	return r, nil
}

// approve approves the request as the approver its initialization names.
func approve(_ context.Context, step *tasker.StepContext) (any, error) {
	var init struct {
		Approver string `json:"approver"`
	}
	var req Request
	if err := errors.Join(step.Initialization(&init), step.DependencyResult("validate_request", &req)); err != nil {
		return nil, err
	}
	return Approval{Step: step.StepName(), Approver: init.Approver, Approved: true, Amount: req.Amount}, nil
}

// finalizeApproval runs once every approval the decision created is done:
// it reads each possible approval, skips those never created, and
// approves the request only if every one it found approved.
func finalizeApproval(_ context.Context, step *tasker.StepContext) (any, error) {
	var r Routing
	if err := step.DependencyResult("routing_decision", &r); err != nil {
		return nil, err
	}
	out := Outcome{Status: "approved", Route: r.Route, Amount: r.Amount}
	for _, name := range approvalSteps {
		var a Approval
		switch err := step.DependencyResult(name, &a); {
		case errors.Is(err, tasker.ErrNoResult):
			continue // not created: the decision chose other steps
		case err != nil:
			return nil, err
		case !a.Approved:
			out.Status = "rejected"
		}
		out.Approvals, out.ApprovedBy = append(out.Approvals, name), append(out.ApprovedBy, a.Approver)
	}
	if len(out.Approvals) == 0 {
		return nil, &tasker.StepError{Type: tasker.ErrorPermanent, Code: "NO_APPROVALS",
			Message: "finalize_approval found no approval result"}
	}
	return out, nil
}
