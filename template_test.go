package tasker

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const ecommerceTemplateFile = "testdata/templates/valid/ecommerce_order_processing.yaml"

// templateErrors flattens an error tree into its *TemplateErrors, failing
// the test on any other leaf.
func templateErrors(t *testing.T, err error) []*TemplateError {
	t.Helper()
	var out []*TemplateError
	var walk func(error)
	walk = func(err error) {
		if te, ok := err.(*TemplateError); ok {
			out = append(out, te)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		t.Errorf("unexpected error in tree: %T %v", err, err)
	}
	if err != nil {
		walk(err)
	}
	return out
}

func mustParseTemplate(t *testing.T, src string) *Template {
	t.Helper()
	tpl, err := ParseTemplate("inline.yaml", []byte(src))
	if err != nil {
		t.Fatalf("ParseTemplate: %v", err)
	}
	return tpl
}

// ecommerceSpecs returns the steps the e-commerce template must load as,
// before the fields every step shares are filled in.
func ecommerceSpecs() []StepSpec {
	retry := func(attempts int) RetryPolicy {
		return RetryPolicy{Retryable: true, MaxAttempts: attempts, Backoff: BackoffExponential,
			BaseDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second}
	}
	return []StepSpec{
		{Name: "validate_cart", Description: "Validate cart items, check availability, calculate totals",
			Callable: "handlers.ecommerce.ValidateCartHandler", Retry: retry(2),
			index: 0, dependents: []int{1, 2}},
		{Name: "process_payment", Description: "Authorize payment through payment gateway",
			Callable: "handlers.ecommerce.ProcessPaymentHandler", Retry: retry(3),
			Dependencies: []string{"validate_cart"}, index: 1, deps: []int{0}, dependents: []int{3}},
		{Name: "update_inventory", Description: "Reserve inventory for order items",
			Callable: "handlers.ecommerce.UpdateInventoryHandler", Retry: retry(3),
			Dependencies: []string{"validate_cart"}, index: 2, deps: []int{0}, dependents: []int{3}},
		{Name: "create_order", Description: "Create order record from payment and inventory results",
			Callable: "handlers.ecommerce.CreateOrderHandler", Retry: retry(2),
			Dependencies: []string{"process_payment", "update_inventory"}, index: 3, deps: []int{1, 2},
			dependents: []int{4}},
		{Name: "send_confirmation", Description: "Send order confirmation email to customer",
			Callable: "handlers.ecommerce.SendConfirmationHandler", Retry: retry(2),
			Dependencies: []string{"create_order"}, index: 4, deps: []int{3}},
	}
}

func TestLoadTemplateFileEcommerce(t *testing.T) {
	tpl, err := LoadTemplateFile(ecommerceTemplateFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkTemplateDAG(tpl); err != nil {
		t.Fatal(err)
	}
	if got, want := tpl.String(), "ecommerce/ecommerce_order_processing@1.0.0"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if tpl.Description != "E-commerce checkout: validate → (payment ‖ inventory) → order → confirm" {
		t.Errorf("Description = %q", tpl.Description)
	}
	if tpl.Source != ecommerceTemplateFile {
		t.Errorf("Source = %q, want %q", tpl.Source, ecommerceTemplateFile)
	}
	want := ecommerceSpecs()
	if len(tpl.Steps) != len(want) {
		t.Fatalf("got %d steps, want %d", len(tpl.Steps), len(want))
	}
	for i, got := range tpl.Steps {
		w := want[i]
		w.Initialization, w.Type, w.Method = json.RawMessage("{}"), StepStandard, "call"
		w.decisionParent, w.atStart = -1, true
		if !reflect.DeepEqual(*got, w) {
			t.Errorf("step %d:\n got %+v\nwant %+v", i, *got, w)
		}
		if tpl.Step(w.Name) != got {
			t.Errorf("Step(%q) is not Steps[%d]", w.Name, i)
		}
	}
	if tpl.Step("nope") != nil {
		t.Error("Step(unknown) != nil")
	}
	const schema = `{"type":"object","required":["cart_items","customer_email"],"properties":{
		"cart_items":{"type":"array","items":{"type":"object","required":["sku","name","quantity","unit_price"],
			"properties":{"sku":{"type":"string"},"name":{"type":"string"},"quantity":{"type":"integer"},
			"unit_price":{"type":"number"}}}},
		"customer_email":{"type":"string","format":"email"},"payment_token":{"type":"string"}}}`
	assertTemplateJSON(t, tpl.InputSchema, schema)
	if tpl.schema == nil {
		t.Error("schema not compiled")
	}
}

func assertTemplateJSON(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON mismatch:\n got %s\nwant %s", got, want)
	}
}

func TestParseTemplateOptionalFields(t *testing.T) {
	tpl, err := LoadTemplateFile("testdata/templates/valid/anchors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	first, second, third := tpl.Steps[0], tpl.Steps[1], tpl.Steps[2]
	assertTemplateJSON(t, first.Initialization, `{"endpoint":"https://example.com","attempts":2,"tags":["a","b"]}`)
	if first.Timeout != 30*time.Second {
		t.Errorf("Timeout = %v, want 30s", first.Timeout)
	}
	fast := RetryPolicy{Retryable: true, MaxAttempts: 5, Backoff: BackoffLinear,
		BaseDelay: 10 * time.Millisecond, MaxDelay: DefaultMaxDelay}
	if first.Retry != fast || second.Retry != fast {
		t.Errorf("aliased retry = %+v, %+v; want %+v", first.Retry, second.Retry, fast)
	}
	merged := fast
	merged.Retryable, merged.MaxAttempts = false, 0
	if third.Retry != merged {
		t.Errorf("merged retry = %+v, want %+v", third.Retry, merged)
	}
	if tpl.InputSchema != nil || tpl.schema != nil {
		t.Errorf("InputSchema = %s, want nil", tpl.InputSchema)
	}
	if !slices.Equal(third.deps, []int{0, 1}) || !slices.Equal(first.dependents, []int{1, 2}) {
		t.Errorf("deps %v, dependents %v", third.deps, first.dependents)
	}
}

func TestParseTemplateRetryDefaults(t *testing.T) {
	def := DefaultRetryPolicy()
	tests := []struct {
		name, retry string
		want        RetryPolicy
	}{
		{"block omitted", "", def},
		{"block null", "    retry:\n", def},
		{"block empty", "    retry: {}\n", def},
		{"only retryable", "    retry:\n      retryable: false\n",
			RetryPolicy{false, 3, BackoffExponential, time.Second, 30 * time.Second}},
		{"only max_attempts", "    retry:\n      max_attempts: 7\n",
			RetryPolicy{true, 7, BackoffExponential, time.Second, 30 * time.Second}},
		{"zero max_attempts", "    retry:\n      max_attempts: 0\n",
			RetryPolicy{true, 0, BackoffExponential, time.Second, 30 * time.Second}},
		{"only backoff", "    retry:\n      backoff: constant\n",
			RetryPolicy{true, 3, BackoffConstant, time.Second, 30 * time.Second}},
		{"only backoff_base_ms", "    retry:\n      backoff_base_ms: 250\n",
			RetryPolicy{true, 3, BackoffExponential, 250 * time.Millisecond, 30 * time.Second}},
		{"only max_backoff_ms", "    retry:\n      max_backoff_ms: 0\n",
			RetryPolicy{true, 3, BackoffExponential, time.Second, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "name: r\nnamespace_name: n\nversion: 1.0.0\nsteps:\n  - name: s\n    handler:\n      callable: c\n" + tt.retry
			s := mustParseTemplate(t, src).Steps[0]
			if s.Retry != tt.want {
				t.Errorf("Retry = %+v, want %+v", s.Retry, tt.want)
			}
			if string(s.Initialization) != "{}" || s.Timeout != 0 || s.Dependencies != nil {
				t.Errorf("defaults: init %s, timeout %v, deps %v", s.Initialization, s.Timeout, s.Dependencies)
			}
		})
	}
}

type invalidTemplateCase struct {
	file  string // in testdata/templates/invalid
	line  int
	field string
	msg   string // a substring of the message
}

// invalidTemplateCases lists, for each file of testdata/templates/invalid, the one
// problem it must report.
var invalidTemplateCases = []invalidTemplateCase{
	{"yaml_syntax.yaml", 4, "", "YAML syntax error: mapping values are not allowed"},
	{"yaml_structure.yaml", 5, "", "YAML syntax error: did not find expected '-' indicator"},
	{"not_mapping.yaml", 1, "", "a template must be a mapping, got a list"},
	{"empty.yaml", 0, "", "empty file"},
	{"multi_document.yaml", 8, "", "more than one YAML document"},
	{"unknown_field.yaml", 11, "steps[1].dependancies", `unknown field "dependancies" (did you mean "dependencies"?)`},
	{"unknown_retry_field.yaml", 9, "steps[0].retry.max_attempt", `unknown field "max_attempt"`},
	{"unknown_top_field.yaml", 4, "namespace", `unknown field "namespace"`},
	{"duplicate_key.yaml", 9, "steps[0].description", "duplicate key (first at line 8)"},
	{"missing_name.yaml", 1, "name", "is required"},
	{"missing_namespace.yaml", 1, "namespace_name", "is required"},
	{"missing_version.yaml", 1, "version", "is required"},
	{"empty_version.yaml", 3, "version", "must not be empty"},
	{"missing_steps.yaml", 1, "steps", "is required"},
	{"no_steps.yaml", 4, "steps", "at least one step"},
	{"missing_step_name.yaml", 8, "steps[1].name", "is required"},
	{"missing_handler.yaml", 8, "steps[1].handler", "is required"},
	{"missing_callable.yaml", 10, "steps[1].handler.callable", "is required"},
	{"bad_name.yaml", 1, "name", `"OrderProcessing" must match ^[a-z][a-z0-9_]*$`},
	{"bad_step_name.yaml", 8, "steps[1].name", `"send-confirmation" must match`},
	{"duplicate_step.yaml", 12, "steps[2].name", `duplicate step name "a" (first at line 5)`},
	{"unknown_dependency.yaml", 11, "steps[1].dependencies[1]", `unknown step "validate"`},
	{"self_dependency.yaml", 11, "steps[1].dependencies[1]", `step "b" depends on itself`},
	{"duplicate_dependency.yaml", 11, "steps[1].dependencies[1]", `duplicate dependency "a"`},
	{"cycle.yaml", 11, "steps[1].dependencies[1]", "cycle: a -> b -> c -> a"},
	{"bad_namespace.yaml", 2, "namespace_name", `"E-Commerce" must match ^[a-z][a-z0-9_]*$`},
	{"namespace_too_long.yaml", 2, "namespace_name", "is 32 characters long, the limit is 29"},
	{"bad_version.yaml", 3, "version", `"1.0" is not MAJOR.MINOR.PATCH`},
	{"unquoted_version.yaml", 3, "version", "must be a string, got a number 1.0 (quote it)"},
	{"bad_backoff.yaml", 9, "steps[0].retry.backoff", `must be one of none, linear, exponential, fibonacci, constant, got "quadratic"`},
	{"negative_max_attempts.yaml", 9, "steps[0].retry.max_attempts", "must not be negative, got -1"},
	{"overflow_max_attempts.yaml", 9, "steps[0].retry.max_attempts", "99999999999999999999 is out of range"},
	{"negative_backoff_base.yaml", 9, "steps[0].retry.backoff_base_ms", "must not be negative, got -100"},
	{"negative_max_backoff.yaml", 9, "steps[0].retry.max_backoff_ms", "must not be negative, got -1"},
	{"negative_timeout.yaml", 8, "steps[0].timeout_seconds", "must not be negative, got -5"},
	{"wrong_type.yaml", 9, "steps[0].retry.max_attempts", "must be an integer, got a string"},
	{"bad_initialization.yaml", 8, "steps[0].handler.initialization", "must be a mapping, got a list"},
	{"bad_schema.yaml", 9, "input_schema", "invalid JSON Schema"},
	{"remote_ref.yaml", 9, "input_schema", "only references within input_schema"},
	{"alias_loop.yaml", 8, "input_schema.properties.self", "alias refers to a value that contains it"},
	{"bad_metadata_tags.yaml", 5, "metadata.tags", `must be a list of strings, got a string`},
	{"bad_metadata_created_at.yaml", 5, "metadata.created_at", `must be an RFC 3339 timestamp`},
	{"unknown_metadata_field.yaml", 5, "metadata.autor", `unknown field "autor" (did you mean "author"?)`},
	{"empty_system_primary.yaml", 5, "system_dependencies.primary", `must not be empty`},
	{"bad_domain_event_schema.yaml", 7, "domain_events[0].schema", `invalid JSON Schema`},
	{"missing_domain_event_name.yaml", 5, "domain_events[0].name", `is required`},
	{"duplicate_domain_event.yaml", 6, "domain_events[1].name", `duplicate domain event "order.created" (first at line 5)`},
	{"bad_step_type.yaml", 8, "steps[0].type", `must be one of standard, decision, deferred_convergence, batchable, batch_worker, got "conditional"`},
	{"type_and_step_type.yaml", 9, "steps[0].step_type", `is an alias of type: give one of them, not both`},
	{"dependencies_and_depends_on.yaml", 12, "steps[1].depends_on", `is an alias of dependencies`},
	{"unknown_depends_on.yaml", 11, "steps[1].depends_on[0]", `unknown step "nope"`},
	{"decision_without_dependency.yaml", 8, "steps[0].type", `a decision step needs at least one dependency`},
	{"deferred_without_dependency.yaml", 8, "steps[0].step_type", `a deferred_convergence step must list its possible dependencies`},
	{"batchable_without_batch_config.yaml", 8, "steps[0].type", `a batchable step needs a batch_config`},
	{"batch_worker_not_named.yaml", 17, "steps[2].type", `batch_worker "x" is not the worker_template of any batchable step`},
	{"batch_worker_without_batchable.yaml", 12, "steps[1].type", `batch_worker "w" must depend on a batchable step`},
	{"worker_template_unknown.yaml", 10, "steps[0].batch_config.worker_template", `unknown step "nope"`},
	{"worker_template_not_worker.yaml", 10, "steps[0].batch_config.worker_template", `step "w" is standard, not a batch_worker`},
	{"batch_config_on_standard.yaml", 8, "steps[0].batch_config", `only a batchable step has a batch_config, this one is standard`},
	{"batch_size_out_of_range.yaml", 11, "steps[0].batch_config.batch_size", `must be between 1 and 100000, got 0`},
	{"parallelism_out_of_range.yaml", 11, "steps[0].batch_config.parallelism", `must be between 1 and 1000, got 1001`},
	{"bad_failure_strategy.yaml", 11, "steps[0].batch_config.failure_strategy", `must be one of continue_on_failure, fail_fast, isolate, got "retry_all"`},
	{"missing_worker_template.yaml", 10, "steps[0].batch_config.worker_template", `is required`},
	{"bad_result_schema.yaml", 9, "steps[0].result_schema", `invalid JSON Schema`},
	{"result_schema_remote_ref.yaml", 9, "steps[0].result_schema", `only references within steps[0].result_schema`},
	{"composition.yaml", 8, "steps[0].composition", `is not supported`},
	{"bad_resolver.yaml", 8, "steps[0].handler.resolver", `resolver "class_lookup" is not supported`},
	{"empty_method.yaml", 8, "steps[0].handler.method", `must not be empty`},
	{"undeclared_event.yaml", 9, "steps[0].publishes_events[0].name", `event "order.shipped" is not in domain_events and has no schema of its own`},
	{"bad_event_condition.yaml", 11, "steps[0].publishes_events[0].condition", `must be one of success, failure, retryable_failure, permanent_failure, always, got "sometimes"`},
	{"bad_delivery_mode.yaml", 11, "steps[0].publishes_events[0].delivery_mode", `must be one of durable, fast, broadcast, got "carrier_pigeon"`},
	{"bad_event_schema.yaml", 10, "steps[0].publishes_events[0].schema", `invalid JSON Schema`},
	{"environment_unknown_step.yaml", 11, "environments.production.steps[0].name", `unknown step "nope" (want a step of this template or ALL)`},
	{"environment_bad_retry.yaml", 13, "environments.test.steps[0].retry.backoff", `got "quadratic"`},
	{"environment_unknown_field.yaml", 12, "environments.test.steps[0].description", `unknown field "description"`},
	{"lifecycle_not_positive.yaml", 9, "lifecycle.max_duration_minutes", `must be positive, got 0`},
	{"lifecycle_bad_staleness.yaml", 9, "lifecycle.staleness_action", `must be one of dlq, error, none, got "retry"`},
	{"lifecycle_bad_bool.yaml", 9, "lifecycle.auto_fail_on_timeout", `must be true or false, got a string`},
	{"bad_identity_strategy.yaml", 4, "identity_strategy", `must be one of strict, caller_provided, always_unique, got "loose"`},
}

func TestParseTemplateInvalid(t *testing.T) {
	for _, tt := range invalidTemplateCases {
		t.Run(tt.file, func(t *testing.T) {
			file := filepath.Join("testdata/templates/invalid", tt.file)
			tpl, err := LoadTemplateFile(file)
			if tpl != nil || err == nil {
				t.Fatalf("got template %v, error %v; want an error", tpl, err)
			}
			if !errors.Is(err, ErrInvalidTemplate) {
				t.Errorf("errors.Is(err, ErrInvalidTemplate) = false for %v", err)
			}
			var te *TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("errors.As(*TemplateError) = false for %v", err)
			}
			if all := templateErrors(t, err); len(all) != 1 {
				t.Errorf("got %d problems, want 1:\n%v", len(all), err)
			}
			if te.File != file || te.Line != tt.line || te.Field != tt.field || !strings.Contains(te.Msg, tt.msg) {
				t.Errorf("got %q (file %q, line %d, field %q)\nwant file %q, line %d, field %q, message containing %q",
					te.Msg, te.File, te.Line, te.Field, file, tt.line, tt.field, tt.msg)
			}
		})
	}
}

func TestInvalidTemplatesAllCovered(t *testing.T) {
	files, err := filepath.Glob("testdata/templates/invalid/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		if !slices.ContainsFunc(invalidTemplateCases, func(c invalidTemplateCase) bool { return c.file == base }) {
			t.Errorf("%s has no case in invalidCases", f)
		}
	}
}

func TestParseTemplateReportsEveryProblem(t *testing.T) {
	const file = "testdata/templates/several_problems.yaml"
	_, err := LoadTemplateFile(file)
	want := []TemplateError{
		{file, 2, "name", `"Orders" must match ^[a-z][a-z0-9_]*$`},
		{file, 4, "version", `"1.0" is not MAJOR.MINOR.PATCH (digits only, such as "1.0.0")`},
		{file, 10, "steps[0].retry.max_attempts", "must not be negative, got -1"},
		{file, 11, "steps[0].retry.backoff", `must be one of none, linear, exponential, fibonacci, constant, got "quadratic"`},
		{file, 12, "steps[0].retry.retryable", "must be true or false, got a string"},
		{file, 14, "steps[1].handler.callable", "is required"},
		{file, 15, "steps[1].dependencies[1]", `unknown step "zzz"`},
		{file, 16, "steps[1].timeout_seconds", "must not be negative, got -3"},
		{file, 17, "steps[1].dependancies",
			`unknown field "dependancies" (did you mean "dependencies"?)`},
	}
	got := templateErrors(t, err)
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i := range want {
		if *got[i] != want[i] {
			t.Errorf("problem %d:\n got %+v\nwant %+v", i, *got[i], want[i])
		}
	}
}

func TestLoadTemplateFileMissing(t *testing.T) {
	_, err := LoadTemplateFile("testdata/templates/nope.yaml")
	if !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrInvalidTemplate) {
		t.Errorf("got %v, want a not-exist error", err)
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0},
		{"1.0.0", "1.0.1", -1},
		{"1.2.0", "1.10.0", -1},
		{"2.0.0", "10.0.0", -1},
		{"10.0.0", "9.99.99", 1},
		{"1.10.3", "1.9.30", 1},
		{"0.0.1", "0.0.0", 1},
		{"1.0.10", "1.0.9", 1},
		{"001.0.0", "1.0.0", 0},
		{"123456789012345678901234567890.0.0", "123456789012345678901234567891.0.0", -1},
		{"1.0", "0.0.1", -1},
		{"0.0.0", "v1", 1},
		{"x", "x", 0},
		{"a", "b", -1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := compareVersions(tt.b, tt.a); got != -tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}
