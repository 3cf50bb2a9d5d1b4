package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gotasker/tasker"
)

// Request is the customer_success task's input: a refund asked for in a
// support ticket.
type Request struct {
	TicketID     string  `json:"ticket_id"`
	CustomerID   string  `json:"customer_id"`
	RefundAmount float64 `json:"refund_amount"`
	Reason       string  `json:"reason,omitempty"`
}

// daysSincePurchase is how long ago, in the simulated ticketing system,
// every ticket's order was paid.
const daysSincePurchase = 12

// Ticket is validate_refund_request's result: the request, with the
// payment the ticket's order was paid with.
type Ticket struct {
	Request
	PaymentID         string `json:"payment_id"`
	DaysSincePurchase int    `json:"days_since_purchase"`
}

// Policy is check_refund_policy's result.
type Policy struct {
	Eligible          bool `json:"eligible"`
	DaysSincePurchase int  `json:"days_since_purchase"`
	MaxDays           int  `json:"max_days_since_purchase"`
}

// Approval is get_manager_approval's result.
type Approval struct {
	Required   bool   `json:"required"`
	ApprovedBy string `json:"approved_by"`
}

// PaymentRequest is the payments task's input.
type PaymentRequest struct {
	PaymentID    string  `json:"payment_id"`
	RefundAmount float64 `json:"refund_amount"`
	RefundReason string  `json:"refund_reason,omitempty"`
}

// Refund is process_gateway_refund's result.
type Refund struct {
	RefundID  string  `json:"refund_id"`
	PaymentID string  `json:"payment_id"`
	Amount    float64 `json:"amount"`
	Gateway   string  `json:"gateway"`
	Status    string  `json:"status"`
}

// Delegation is execute_refund_workflow's result: the payments task that
// refunded, and its refund.
type Delegation struct {
	PaymentsTaskID string `json:"payments_task_id"`
	Workflow       string `json:"workflow"`
	Refund         Refund `json:"refund"`
}

// Target is execute_refund_workflow's handler.initialization: the
// template of the sub-task.
type Target struct {
	Namespace string `json:"target_namespace"`
	Workflow  string `json:"target_workflow"`
	Version   string `json:"target_version"`
}

// validateRefundRequest looks the ticket up: its order was paid with
// payment pay_<ticket>.
func validateRefundRequest(_ context.Context, step *tasker.StepContext) (any, error) {
	var in Request
	if err := step.DecodeInput(&in); err != nil {
		return nil, err
	}
	return Ticket{Request: in, PaymentID: "pay_" + in.TicketID, DaysSincePurchase: daysSincePurchase}, nil
}

// checkRefundPolicy refuses, for good, a refund of an order paid longer
// ago than the policy allows.
func checkRefundPolicy(_ context.Context, step *tasker.StepContext) (any, error) {
	var init struct {
		MaxDays int `json:"max_days_since_purchase"`
	}
	var tk Ticket
	if err := errors.Join(step.Initialization(&init), step.DependencyResult("validate_refund_request", &tk)); err != nil {
		return nil, err
	}
	if tk.DaysSincePurchase > init.MaxDays {
		return nil, &tasker.StepError{Type: tasker.ErrorPermanent, Code: "REFUND_POLICY",
			Message: fmt.Sprintf("paid %d days ago, more than %d", tk.DaysSincePurchase, init.MaxDays)}
	}
	return Policy{Eligible: true, DaysSincePurchase: tk.DaysSincePurchase, MaxDays: init.MaxDays}, nil
}

// getManagerApproval records a manager's approval of an amount at or over
// the threshold; a smaller one needs none.
func getManagerApproval(_ context.Context, step *tasker.StepContext) (any, error) {
	var init struct {
		Threshold float64 `json:"approval_threshold"`
	}
	var tk Ticket
	if err := errors.Join(step.Initialization(&init), step.DependencyResult("validate_refund_request", &tk)); err != nil {
		return nil, err
	}
	if tk.RefundAmount < init.Threshold {
		return Approval{ApprovedBy: "policy"}, nil
	}
	return Approval{Required: true, ApprovedBy: "manager"}, nil
}

// executeRefundWorkflow delegates the refund to a task of the payments
// namespace and waits for it, holding no worker meanwhile: the first call
// returns ErrSubtaskPending, the call after the child ended its refund.
func executeRefundWorkflow(ctx context.Context, step *tasker.StepContext) (any, error) {
	var to Target
	var tk Ticket
	if err := errors.Join(step.Initialization(&to), step.DependencyResult("validate_refund_request", &tk)); err != nil {
		return nil, err
	}
	child, err := step.Subtask(ctx, tasker.SubmitRequest{Namespace: to.Namespace, Name: to.Workflow, Version: to.Version,
		Context: PaymentRequest{PaymentID: tk.PaymentID, RefundAmount: tk.RefundAmount, RefundReason: tk.Reason}})
	switch {
	case errors.Is(err, tasker.ErrSubtaskFailed):
		return nil, &tasker.StepError{Type: tasker.ErrorRetryable, Code: "REFUND_FAILED", Retryable: true, Err: err,
			Message: fmt.Sprintf("%s/%s task %s ended in %s%s", child.Namespace, child.Name, child.ID, child.State, failureIn(child))}
	case err != nil:
		return nil, err // ErrSubtaskPending as it is: the engine calls again once the child ended
	}
	d := Delegation{PaymentsTaskID: child.ID, Workflow: child.Namespace + "/" + child.Name + "@" + child.Version}
	if err := json.Unmarshal(child.Step("process_gateway_refund").Result, &d.Refund); err != nil {
		return nil, fmt.Errorf("the refund of %s: %w", child.ID, err)
	}
	return d, nil
}

// failureIn returns ": step: message" for the first failed step of t, or "".
func failureIn(t *tasker.Task) string {
	for _, s := range t.Steps {
		if s.State == tasker.StepFailed && s.LastError != nil {
			return ": " + s.Name + ": " + s.LastError.Message
		}
	}
	return ""
}

// TicketUpdate is update_ticket_status's result.
type TicketUpdate struct {
	TicketID string `json:"ticket_id"`
	Status   string `json:"status"`
	RefundID string `json:"refund_id"`
}

// updateTicketStatus resolves the ticket with the refund.
func updateTicketStatus(_ context.Context, step *tasker.StepContext) (any, error) {
	tk, d, err := refunded(step)
	if err != nil {
		return nil, err
	}
	return TicketUpdate{TicketID: tk.TicketID, Status: "resolved", RefundID: d.Refund.RefundID}, nil
}

// refunded reads the ticket and the delegated refund, for the steps after
// execute_refund_workflow.
func refunded(step *tasker.StepContext) (Ticket, Delegation, error) {
	var tk Ticket
	var d Delegation
	err := errors.Join(step.DependencyResult("validate_refund_request", &tk),
		step.DependencyResult("execute_refund_workflow", &d))
	return tk, d, err
}

// Notice is a notify_customer step's result: the message sent.
type Notice struct {
	To      string `json:"to"`
	Message string `json:"message"`
}

// notifyCustomer tells the customer the refund's outcome, as the payments
// task reported it.
func notifyCustomer(_ context.Context, step *tasker.StepContext) (any, error) {
	tk, d, err := refunded(step)
	if err != nil {
		return nil, err
	}
	return Notice{To: tk.CustomerID, Message: fmt.Sprintf("Your refund of %.2f for ticket %s %s (%s).",
		d.Refund.Amount, tk.TicketID, d.Refund.Status, d.Refund.RefundID)}, nil
}
