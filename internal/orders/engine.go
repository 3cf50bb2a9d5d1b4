package orders

import (
	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store"
)

// CurlBody is the -d of the guide's Step 3 curl command, verbatim: what
// POST /api/v1/tasks must accept as it is.
const CurlBody = `{
    "name": "ecommerce_order_processing",
    "namespace": "ecommerce",
    "version": "1.0.0",
    "initiator": "api:checkout",
    "source_system": "web",
    "reason": "New order received",
    "context": {
      "customer_email": "customer@example.com",
      "payment_token": "tok_test_success",
      "cart_items": [
        {"sku": "WIDGET-A", "name": "Widget A", "quantity": 2, "unit_price": 29.99},
        {"sku": "GADGET-B", "name": "Gadget B", "quantity": 1, "unit_price": 49.99}
      ]
    }
  }`

// NewEngine returns an engine on st with the guide's template and h's
// handlers, not started.
func NewEngine(st store.Store, cfg *tasker.Config, h Handlers) (*tasker.Engine, error) {
	eng, err := tasker.New(st, cfg)
	if err != nil {
		return nil, err
	}
	tmpl, err := Template()
	if err != nil {
		return nil, err
	}
	if err := h.Register(eng); err != nil {
		return nil, err
	}
	if err := eng.AddTemplates(tmpl); err != nil {
		return nil, err
	}
	return eng, nil
}
