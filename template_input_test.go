package tasker

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// validateInputCases are the inputs TestTemplateValidateInput checks
// against the e-commerce template, with the violations each must give (nil:
// valid).
func validateInputCases() []struct {
	name  string
	input string
	want  []Violation
} {
	const item = `{"sku": "WIDGET-A", "name": "Widget A", "quantity": 2, "unit_price": 29.99}`
	return []struct {
		name  string
		input string
		want  []Violation
	}{
		{"valid", `{"customer_email": "customer@example.com", "payment_token": "tok_test_success",
			"cart_items": [` + item + `, {"sku": "GADGET-B", "name": "Gadget B", "quantity": 1, "unit_price": 49.99}]}`, nil},
		{"valid without optional token", `{"customer_email": "a@b.co", "cart_items": []}`, nil},
		{"missing customer_email", `{"cart_items": [` + item + `]}`,
			[]Violation{{"$.customer_email", "customer_email is required"}}},
		{"bad email format", `{"customer_email": "not-an-email", "cart_items": [` + item + `]}`,
			[]Violation{{"$.customer_email", "Does not match format 'email'"}}},
		{"wrong item types", `{"customer_email": "a@b.co", "cart_items": [` + item +
			`, {"sku": "X", "name": "X", "quantity": "two", "unit_price": "9.99"}]}`,
			[]Violation{
				{"$.cart_items[1].quantity", "Invalid type. Expected: integer, given: string"},
				{"$.cart_items[1].unit_price", "Invalid type. Expected: number, given: string"},
			}},
		{"every problem at once", `{"customer_email": "nope", "cart_items": [{"sku": 7, "quantity": 1.5}]}`,
			[]Violation{
				{"$.cart_items[0].name", "name is required"},
				{"$.cart_items[0].quantity", "Invalid type. Expected: integer, given: number"},
				{"$.cart_items[0].sku", "Invalid type. Expected: string, given: integer"},
				{"$.cart_items[0].unit_price", "unit_price is required"},
				{"$.customer_email", "Does not match format 'email'"},
			}},
		{"empty input is {}", ``,
			[]Violation{{"$.cart_items", "cart_items is required"}, {"$.customer_email", "customer_email is required"}}},
		{"not an object", `[1, 2]`, []Violation{{"$", "Invalid type. Expected: object, given: array"}}},
		{"invalid JSON", `{"customer_email": `,
			[]Violation{{"$", "invalid JSON: unexpected end of JSON input"}}},
		{"trailing garbage", `{} {}`,
			[]Violation{{"$", "invalid JSON: invalid character '{' after top-level value"}}},
	}
}

func TestTemplateValidateInput(t *testing.T) {
	tpl, err := LoadTemplateFile(ecommerceTemplateFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range validateInputCases() {
		t.Run(tt.name, func(t *testing.T) {
			err := tpl.validateInput(json.RawMessage(tt.input))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("validateInput: %v", err)
				}
				return
			}
			var ie *InputError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("got %v, want an *InputError", err)
			}
			if ie.Template != "ecommerce/ecommerce_order_processing@1.0.0" {
				t.Errorf("Template = %q", ie.Template)
			}
			if !reflect.DeepEqual(ie.Violations, tt.want) {
				t.Errorf("violations:\n got %q\nwant %q", ie.Violations, tt.want)
			}
		})
	}
}

func TestTemplateValidateInputPaths(t *testing.T) {
	tpl := mustParseTemplate(t, `name: t
namespace_name: n
version: 1.0.0
steps:
  - name: s
    handler: {callable: c}
input_schema:
  type: object
  additionalProperties: false
  properties:
    "0":
      type: string
    "odd key":
      type: string
    list:
      type: array
      items: {type: array, items: {type: integer}}
`)
	err := tpl.validateInput(json.RawMessage(`{"0": 1, "odd key": 2, "list": [[1, "x"]], "extra": true}`))
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("got %v, want an *InputError", err)
	}
	var paths []string
	for _, v := range ie.Violations {
		paths = append(paths, v.Path)
	}
	want := []string{`$.extra`, `$.list[0][1]`, `$["0"]`, `$["odd key"]`}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("paths %q, want %q", paths, want)
	}
}

func TestTemplateValidateInputWithoutSchema(t *testing.T) {
	tpl := mustParseTemplate(t, "name: t\nnamespace_name: n\nversion: 1.0.0\nsteps:\n  - name: s\n    handler: {callable: c}\n")
	for _, in := range []string{``, `{}`, `{"anything": [1, 2]}`, `null`} {
		if err := tpl.validateInput(json.RawMessage(in)); err != nil {
			t.Errorf("validateInput(%q) = %v, want nil", in, err)
		}
	}
	err := tpl.validateInput(json.RawMessage(`{`))
	var ie *InputError
	if !errors.As(err, &ie) || len(ie.Violations) != 1 || ie.Violations[0].Path != "$" ||
		!strings.HasPrefix(ie.Violations[0].Message, "invalid JSON") {
		t.Errorf("validateInput(`{`) = %v, want one invalid-JSON violation at $", err)
	}
}

func TestTemplateValidateInputLocalRef(t *testing.T) {
	tpl := mustParseTemplate(t, `name: t
namespace_name: n
version: 1.0.0
steps:
  - name: s
    handler: {callable: c}
input_schema:
  definitions:
    money: {type: number, minimum: 0}
  type: object
  properties:
    total: {$ref: "#/definitions/money"}
`)
	err := tpl.validateInput(json.RawMessage(`{"total": -1}`))
	var ie *InputError
	if !errors.As(err, &ie) || len(ie.Violations) != 1 || ie.Violations[0].Path != "$.total" {
		t.Errorf("got %v, want one violation at $.total", err)
	}
	if err := tpl.validateInput(json.RawMessage(`{"total": 1}`)); err != nil {
		t.Errorf("valid input: %v", err)
	}
}
