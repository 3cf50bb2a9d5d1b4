// Package orders is the guide's e-commerce order processing workflow in Go:
// its task template and its five step handlers, ported from "Your First
// Workflow". It is shared by the runnable example, examples/ecommerce, and by
// tasker's end-to-end tests, which so depend on no example.
package orders

import (
	"context"
	_ "embed"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gotasker/tasker"
)

// TemplateYAML is the guide's ecommerce_order_processing template.
//
//go:embed template.yaml
var TemplateYAML []byte

// Template parses TemplateYAML.
func Template() (*tasker.Template, error) {
	return tasker.ParseTemplate("internal/orders/template.yaml", TemplateYAML)
}

// The callables the template names.
const (
	ValidateCartCallable     = "handlers.ecommerce.ValidateCartHandler"
	ProcessPaymentCallable   = "handlers.ecommerce.ProcessPaymentHandler"
	UpdateInventoryCallable  = "handlers.ecommerce.UpdateInventoryHandler"
	CreateOrderCallable      = "handlers.ecommerce.CreateOrderHandler"
	SendConfirmationCallable = "handlers.ecommerce.SendConfirmationHandler"
)

// Payment tokens the simulated gateway understands, as in the guide.
const (
	TokenSuccess      = "tok_test_success"
	TokenDeclined     = "tok_test_declined"
	TokenGatewayError = "tok_test_gateway_error"
)

// Pricing, as in the guide's ValidateCartHandler.
const (
	TaxRate               = 0.08
	FreeShippingThreshold = 100.00
	StandardShipping      = 9.99
)

// CartItem is an item of the task input's cart_items.
type CartItem struct {
	SKU       string  `json:"sku"`
	Name      string  `json:"name"`
	Quantity  int     `json:"quantity"`
	UnitPrice float64 `json:"unit_price"`
}

// Input is the task input the template's input_schema describes.
type Input struct {
	CartItems     []CartItem `json:"cart_items"`
	CustomerEmail string     `json:"customer_email"`
	PaymentToken  string     `json:"payment_token,omitempty"`
}

// ValidatedItem is a cart item with its line total.
type ValidatedItem struct {
	CartItem
	LineTotal float64 `json:"line_total"`
}

// Cart is validate_cart's result.
type Cart struct {
	ValidatedItems []ValidatedItem `json:"validated_items"`
	ItemCount      int             `json:"item_count"`
	Subtotal       float64         `json:"subtotal"`
	Tax            float64         `json:"tax"`
	Shipping       float64         `json:"shipping"`
	Total          float64         `json:"total"`
}

// Payment is process_payment's result.
type Payment struct {
	PaymentID     string  `json:"payment_id"`
	TransactionID string  `json:"transaction_id"`
	AmountCharged float64 `json:"amount_charged"`
	Status        string  `json:"status"`
}

// Reservation is one item reserved by update_inventory.
type Reservation struct {
	SKU              string `json:"sku"`
	QuantityReserved int    `json:"quantity_reserved"`
	ReservationID    string `json:"reservation_id"`
	Warehouse        string `json:"warehouse"`
}

// Inventory is update_inventory's result.
type Inventory struct {
	Reservations       []Reservation `json:"reservations"`
	TotalItemsReserved int           `json:"total_items_reserved"`
	InventoryLogID     string        `json:"inventory_log_id"`
}

// Order is create_order's result.
type Order struct {
	OrderID        string          `json:"order_id"`
	CustomerEmail  string          `json:"customer_email"`
	Items          []ValidatedItem `json:"items"`
	Total          float64         `json:"total"`
	PaymentID      string          `json:"payment_id"`
	TransactionID  string          `json:"transaction_id"`
	InventoryLogID string          `json:"inventory_log_id"`
	Status         string          `json:"status"`
}

// Confirmation is send_confirmation's result.
type Confirmation struct {
	EmailSent bool   `json:"email_sent"`
	Recipient string `json:"recipient"`
	Subject   string `json:"subject"`
	Status    string `json:"status"`
}

// Handlers are the five step handlers. The latencies simulate the external
// payment gateway and inventory service; zero means none.
type Handlers struct {
	PaymentLatency   time.Duration
	InventoryLatency time.Duration
}

// Register registers the five handlers with e under the template's callables.
func (h Handlers) Register(e *tasker.Engine) error {
	for callable, f := range map[string]tasker.HandlerFunc{
		ValidateCartCallable:     ValidateCart,
		ProcessPaymentCallable:   h.ProcessPayment,
		UpdateInventoryCallable:  h.UpdateInventory,
		CreateOrderCallable:      CreateOrder,
		SendConfirmationCallable: SendConfirmation,
	} {
		if err := e.Register(callable, f); err != nil {
			return err
		}
	}
	return nil
}

// ValidateCart validates the cart and computes its totals.
func ValidateCart(_ context.Context, step *tasker.StepContext) (any, error) {
	var items []CartItem
	if err := step.Input("cart_items", &items); err != nil || len(items) == 0 {
		return nil, &tasker.StepError{Message: "Cart is empty or items field is missing",
			Type: tasker.ErrorValidation, Code: "EMPTY_CART"}
	}
	cart := Cart{ValidatedItems: make([]ValidatedItem, 0, len(items))}
	for i, it := range items {
		if it.SKU == "" || it.Quantity < 1 || it.UnitPrice <= 0 {
			return nil, &tasker.StepError{Message: fmt.Sprintf("Invalid item at index %d", i),
				Type: tasker.ErrorValidation, Code: "INVALID_ITEM"}
		}
		if it.Name == "" {
			it.Name = it.SKU
		}
		line := round2(float64(it.Quantity) * it.UnitPrice)
		cart.Subtotal += line
		cart.ValidatedItems = append(cart.ValidatedItems, ValidatedItem{CartItem: it, LineTotal: line})
	}
	cart.ItemCount = len(cart.ValidatedItems)
	cart.Subtotal = round2(cart.Subtotal)
	cart.Tax = round2(cart.Subtotal * TaxRate)
	if cart.Subtotal < FreeShippingThreshold {
		cart.Shipping = StandardShipping
	}
	cart.Total = round2(cart.Subtotal + cart.Tax + cart.Shipping)
	return cart, nil
}

// ProcessPayment authorizes the cart's total with the simulated gateway.
func (h Handlers) ProcessPayment(ctx context.Context, step *tasker.StepContext) (any, error) {
	token := TokenSuccess
	_ = step.Input("payment_token", &token)
	var cart Cart
	if err := step.DependencyResult("validate_cart", &cart); err != nil {
		return nil, &tasker.StepError{Message: "Missing validate_cart dependency result",
			Type: tasker.ErrorHandler, Err: err}
	}
	if err := sleep(ctx, h.PaymentLatency); err != nil {
		return nil, err
	}
	switch token {
	case TokenDeclined:
		return nil, &tasker.StepError{Message: "Payment declined", Type: tasker.ErrorPermanent,
			Code: "PAYMENT_DECLINED"}
	case TokenGatewayError:
		return nil, &tasker.StepError{Message: "Payment gateway error, will retry",
			Type: tasker.ErrorRetryable, Code: "GATEWAY_ERROR", Retryable: true}
	}
	return Payment{PaymentID: "pay_abc123", TransactionID: "txn_def456",
		AmountCharged: cart.Total, Status: "completed"}, nil
}

// UpdateInventory reserves every validated item.
func (h Handlers) UpdateInventory(ctx context.Context, step *tasker.StepContext) (any, error) {
	var cart Cart
	if err := step.DependencyResult("validate_cart", &cart); err != nil {
		return nil, &tasker.StepError{Message: "Missing validate_cart dependency result",
			Type: tasker.ErrorHandler, Err: err}
	}
	if err := sleep(ctx, h.InventoryLatency); err != nil {
		return nil, err
	}
	inv := Inventory{Reservations: make([]Reservation, 0, len(cart.ValidatedItems)), InventoryLogID: "log_inv_001"}
	for _, it := range cart.ValidatedItems {
		inv.Reservations = append(inv.Reservations, Reservation{SKU: it.SKU, QuantityReserved: it.Quantity,
			ReservationID: "res_" + strings.ToLower(it.SKU), Warehouse: "WH-EAST-01"})
		inv.TotalItemsReserved += it.Quantity
	}
	return inv, nil
}

// CreateOrder creates the order record from three upstream results.
func CreateOrder(_ context.Context, step *tasker.StepContext) (any, error) {
	var (
		email string
		cart  Cart
		pay   Payment
		inv   Inventory
	)
	_ = step.Input("customer_email", &email)
	if err := firstErr(step.DependencyResult("validate_cart", &cart),
		step.DependencyResult("process_payment", &pay),
		step.DependencyResult("update_inventory", &inv)); err != nil {
		return nil, &tasker.StepError{Message: "Missing upstream dependency results",
			Type: tasker.ErrorHandler, Err: err}
	}
	return Order{OrderID: "ORD-20260218-ABC", CustomerEmail: email, Items: cart.ValidatedItems,
		Total: cart.Total, PaymentID: pay.PaymentID, TransactionID: pay.TransactionID,
		InventoryLogID: inv.InventoryLogID, Status: "confirmed"}, nil
}

// SendConfirmation sends the (simulated) confirmation email.
func SendConfirmation(_ context.Context, step *tasker.StepContext) (any, error) {
	var order Order
	if err := step.DependencyResult("create_order", &order); err != nil {
		return nil, &tasker.StepError{Message: "Missing create_order dependency result",
			Type: tasker.ErrorHandler, Err: err}
	}
	return Confirmation{EmailSent: true, Recipient: order.CustomerEmail,
		Subject: "Order Confirmation - " + order.OrderID, Status: "sent"}, nil
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// sleep waits d, or returns ctx's error if it ends first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
