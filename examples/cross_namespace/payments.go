package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/gotasker/tasker"
)

// payments runs the payments namespace's refund workflow against a
// simulated gateway and ledger.
type payments struct {
	decline bool // the gateway declines every refund
}

// Eligibility is validate_payment_eligibility's result.
type Eligibility struct {
	PaymentID  string  `json:"payment_id"`
	Refundable bool    `json:"refundable"`
	Amount     float64 `json:"amount"`
}

// LedgerEntry is update_payment_records's result.
type LedgerEntry struct {
	EntryID  string  `json:"entry_id"`
	RefundID string  `json:"refund_id"`
	Amount   float64 `json:"amount"`
}

// validatePaymentEligibility accepts any payment for the amount asked.
func (p *payments) validatePaymentEligibility(_ context.Context, step *tasker.StepContext) (any, error) {
	var in PaymentRequest
	if err := step.DecodeInput(&in); err != nil {
		return nil, err
	}
	return Eligibility{PaymentID: in.PaymentID, Refundable: true, Amount: in.RefundAmount}, nil
}

// processGatewayRefund refunds the payment through the gateway its
// initialization names; with -decline the gateway refuses, for good.
func (p *payments) processGatewayRefund(_ context.Context, step *tasker.StepContext) (any, error) {
	var init struct {
		Gateway string `json:"gateway"`
	}
	var e Eligibility
	if err := errors.Join(step.Initialization(&init), step.DependencyResult("validate_payment_eligibility", &e)); err != nil {
		return nil, err
	}
	if p.decline {
		return nil, &tasker.StepError{Type: tasker.ErrorPermanent, Code: "REFUND_DECLINED",
			Message: fmt.Sprintf("%s declined the refund of %.2f on %s", init.Gateway, e.Amount, e.PaymentID)}
	}
	return Refund{RefundID: "re_" + e.PaymentID, PaymentID: e.PaymentID, Amount: e.Amount,
		Gateway: init.Gateway, Status: "succeeded"}, nil
}

// updatePaymentRecords books the refund in the ledger.
func (p *payments) updatePaymentRecords(_ context.Context, step *tasker.StepContext) (any, error) {
	var r Refund
	if err := step.DependencyResult("process_gateway_refund", &r); err != nil {
		return nil, err
	}
	return LedgerEntry{EntryID: "led_" + r.RefundID, RefundID: r.RefundID, Amount: r.Amount}, nil
}

// sendReceipt sends the refund's receipt for the payment.
func (p *payments) sendReceipt(_ context.Context, step *tasker.StepContext) (any, error) {
	var r Refund
	if err := step.DependencyResult("process_gateway_refund", &r); err != nil {
		return nil, err
	}
	return Notice{To: r.PaymentID, Message: fmt.Sprintf("Refund %s of %.2f: %s.", r.RefundID, r.Amount, r.Status)}, nil
}
