package tasker

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustLoadTemplate(t *testing.T, file string) *Template {
	t.Helper()
	tpl, err := LoadTemplateFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkTemplateDAG(tpl); err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestParseTemplateTaskerFields(t *testing.T) {
	tpl := mustLoadTemplate(t, "testdata/templates/valid/tasker_fields.yaml")
	wantMeta := Metadata{Author: "fulfilment-team", Tags: []string{"orders", "shipping"},
		DocumentationURL: "https://example.com/docs/fulfil_order",
		CreatedAt:        time.Date(2024, 1, 15, 10, 0, 0, 0, time.UTC),
		UpdatedAt:        time.Date(2024, 2, 1, 7, 30, 0, 0, time.UTC)}
	if m := tpl.Metadata; m.Author != wantMeta.Author || !slices.Equal(m.Tags, wantMeta.Tags) ||
		m.DocumentationURL != wantMeta.DocumentationURL || !m.CreatedAt.Equal(wantMeta.CreatedAt) || !m.UpdatedAt.Equal(wantMeta.UpdatedAt) {
		t.Errorf("Metadata = %+v, want %+v", m, wantMeta)
	}
	if sd := tpl.SystemDependencies; sd.Primary != "warehouse_api" || !slices.Equal(sd.Secondary, []string{"carrier_api", "email"}) {
		t.Errorf("SystemDependencies = %+v", sd)
	}
	if len(tpl.DomainEvents) != 2 || tpl.DomainEvents[0].Name != "order.packed" || tpl.DomainEvents[1].Schema != nil {
		t.Fatalf("DomainEvents = %+v", tpl.DomainEvents)
	}
	assertTemplateJSON(t, tpl.DomainEvents[0].Schema, `{"type":"object","required":["order_id"],"properties":{"order_id":{"type":"string"}}}`)
	wantLC := Lifecycle{MaxDuration: 2 * time.Hour, MaxWaitingForDependencies: 30 * time.Minute,
		MaxWaitingForRetry: 15 * time.Minute, MaxStepsInProcess: time.Hour, StalenessAction: "error", AutoFailOnTimeout: true}
	if tpl.Lifecycle == nil || *tpl.Lifecycle != wantLC {
		t.Errorf("Lifecycle = %+v, want %+v", tpl.Lifecycle, wantLC)
	}
	if tpl.IdentityStrategy != IdentityCallerProvided || tpl.Warnings != nil {
		t.Errorf("IdentityStrategy %q, warnings %v", tpl.IdentityStrategy, tpl.Warnings)
	}
	pack, ship := tpl.Step("pack"), tpl.Step("ship")
	if pack.Type != StepStandard || pack.SystemDependency != "warehouse_api" || pack.Method != "pack_items" {
		t.Errorf("pack: type %q, system %q, method %q", pack.Type, pack.SystemDependency, pack.Method)
	}
	wantEvents := []EventDeclaration{
		{Name: "order.packed", Condition: "success", DeliveryMode: "durable"},
		{Name: "order.label_printed", Description: "A shipping label was printed", Schema: json.RawMessage(`{"type":"object"}`),
			Condition: "always", DeliveryMode: "broadcast", Publisher: "LabelPublisher"},
	}
	if !reflect.DeepEqual(pack.PublishesEvents, wantEvents) {
		t.Errorf("PublishesEvents = %+v\nwant %+v", pack.PublishesEvents, wantEvents)
	}
	if !slices.Equal(ship.Dependencies, []string{"pack"}) || !slices.Equal(ship.deps, []int{0}) || ship.Method != "call" {
		t.Errorf("ship: depends_on %v (%v), method %q", ship.Dependencies, ship.deps, ship.Method)
	}
	if ship.Retry.Backoff != BackoffFibonacci || ship.Retry.Delay(4, 0) != 600*time.Millisecond {
		t.Errorf("ship retry %+v", ship.Retry)
	}
	if ship.ResultSchema != nil || ship.validateResult(json.RawMessage(`"anything"`)) != nil {
		t.Error("a step without result_schema accepts any result")
	}
}

func TestParseTemplateDefaultsOfTaskerFields(t *testing.T) {
	tpl := mustLoadTemplate(t, "testdata/templates/valid/defaults.yml")
	if tpl.IdentityStrategy != IdentityAlwaysUnique || tpl.SystemDependencies.Primary != "default" ||
		tpl.Lifecycle != nil || tpl.DomainEvents != nil || !reflect.DeepEqual(tpl.Metadata, Metadata{}) {
		t.Errorf("defaults: identity %q, systems %+v, lifecycle %v, events %v, metadata %+v", tpl.IdentityStrategy,
			tpl.SystemDependencies, tpl.Lifecycle, tpl.DomainEvents, tpl.Metadata)
	}
	lc := mustParseTemplate(t, "name: t\nnamespace_name: n\nversion: 1.0.0\nlifecycle: {max_duration_minutes: 5}\n"+
		"steps:\n  - name: s\n    handler: {callable: c}\n").Lifecycle
	if lc == nil || *lc != (Lifecycle{MaxDuration: 5 * time.Minute, StalenessAction: "dlq"}) {
		t.Errorf("lifecycle defaults = %+v", lc)
	}
}

func TestStepValidateResult(t *testing.T) {
	pack := mustLoadTemplate(t, "testdata/templates/valid/tasker_fields.yaml").Step("pack")
	if vs := pack.validateResult(json.RawMessage(`{"parcels": 2}`)); vs != nil {
		t.Errorf("valid result: %v", vs)
	}
	want := []Violation{{Path: "$.parcels", Message: "Must be greater than or equal to 1"}}
	if vs := pack.validateResult(json.RawMessage(`{"parcels": 0}`)); !reflect.DeepEqual(vs, want) {
		t.Errorf("got %+v, want %+v", vs, want)
	}
	if vs := pack.validateResult(json.RawMessage(`{`)); len(vs) != 1 || vs[0].Path != "$" || !strings.HasPrefix(vs[0].Message, "invalid JSON") {
		t.Errorf("not JSON: %+v", vs)
	}
}

func TestParseTemplateStepTypes(t *testing.T) {
	tpl := mustLoadTemplate(t, "testdata/templates/valid/step_types.yaml")
	var types []StepType
	for _, s := range tpl.Steps {
		types = append(types, s.Type)
	}
	want := []StepType{StepStandard, StepDecision, StepStandard, StepStandard, StepDeferredConvergence, StepBatchable, StepBatchWorker}
	if !slices.Equal(types, want) {
		t.Errorf("types %v, want %v", types, want)
	}
	bc := tpl.Step("split_lines").BatchConfig
	wantBC := BatchConfig{BatchSize: 1000, Parallelism: 10, CursorField: "id", WorkerTemplate: "process_lines",
		FailureStrategy: "continue_on_failure"}
	if bc == nil || *bc != wantBC {
		t.Errorf("BatchConfig = %+v, want %+v", bc, wantBC)
	}
}

func TestTemplateWarnings(t *testing.T) {
	const file = "testdata/templates/valid/legacy_fields.yaml"
	tpl := mustLoadTemplate(t, file)
	want := []TemplateWarning{
		{file, 10, "steps[0].retry.limit", "ignored, as Tasker ignores it: Tasker reads max_attempts"},
		{file, 11, "steps[0].retry.initial_delay", "ignored, as Tasker ignores it: Tasker reads backoff_base_ms"},
		{file, 12, "steps[0].retry.max_delay", "ignored, as Tasker ignores it: Tasker reads max_backoff_ms"},
		{file, 13, "steps[0].lifecycle", "ignored, as Tasker ignores it: Tasker reads the template-level lifecycle"},
	}
	if !reflect.DeepEqual(tpl.Warnings, want) {
		t.Errorf("Warnings:\n got %+v\nwant %+v", tpl.Warnings, want)
	}
	if got := tpl.Warnings[0].String(); got != file+":10: steps[0].retry.limit: ignored, as Tasker ignores it: Tasker reads max_attempts" {
		t.Errorf("String() = %q", got)
	}
	if tpl.Steps[0].Retry != DefaultRetryPolicy() {
		t.Errorf("legacy retry fields changed the policy: %+v", tpl.Steps[0].Retry)
	}
}

func TestForEnvironment(t *testing.T) {
	tpl := mustLoadTemplate(t, "testdata/templates/valid/environments.yaml")
	for _, name := range []string{"", "staging"} {
		if got := tpl.ForEnvironment(name); got != tpl {
			t.Errorf("ForEnvironment(%q) is a copy, want the template itself", name)
		}
	}
	prod := tpl.ForEnvironment("production")
	if prod == tpl || !reflect.DeepEqual(prod.Steps, tpl.Steps) {
		t.Errorf("production, which overrides nothing, changed the steps")
	}
	test := tpl.ForEnvironment("test")
	render, send := test.Step("render"), test.Step("send")
	assertTemplateJSON(t, render.Initialization, `{"template":"order_confirmation","locale":"test","endpoint":"http://all.invalid"}`)
	assertTemplateJSON(t, send.Initialization, `{"endpoint":"http://localhost:8025","batch":10,"locale":"test"}`)
	if render.Timeout != 2*time.Second || send.Timeout != 2*time.Second {
		t.Errorf("timeouts %v, %v; want ALL's 2s", render.Timeout, send.Timeout)
	}
	wantRetry := DefaultRetryPolicy()
	wantRetry.MaxAttempts = 1
	if send.Retry != wantRetry || render.Retry != DefaultRetryPolicy() {
		t.Errorf("retry: send %+v (want %+v, replaced whole), render %+v", send.Retry, wantRetry, render.Retry)
	}
	if err := checkTemplateDAG(test); err != nil {
		t.Errorf("copy's graph: %v", err)
	}
	orig := tpl.Step("send")
	assertTemplateJSON(t, orig.Initialization, `{"endpoint":"https://mail.example.com","batch":10}`)
	if orig.Timeout != 0 || orig.Retry.MaxAttempts != 5 || tpl.Step("render").Timeout != 30*time.Second {
		t.Errorf("the original changed: %+v", orig)
	}
}

func TestTaskerTemplatesLoad(t *testing.T) {
	ts, err := LoadTemplateDir("testdata/templates/tasker")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tpl := range ts {
		got = append(got, tpl.String())
		if err := checkTemplateDAG(tpl); err != nil {
			t.Errorf("%s: %v", tpl, err)
		}
		if tpl.Description == "" || tpl.Metadata.Author == "" || tpl.SystemDependencies.Primary == "default" ||
			len(tpl.DomainEvents) == 0 || tpl.InputSchema == nil || len(tpl.environments) == 0 ||
			tpl.Lifecycle == nil || tpl.Warnings != nil {
			t.Errorf("%s lacks a top-level section or has warnings: %+v", tpl, tpl)
		}
		if err := tpl.checkDecisions(); err != nil {
			t.Errorf("%s: %v", tpl, err)
		}
	}
	want := []string{
		"customer_success/process_refund@1.3.0", "data_pipeline/analytics_pipeline@1.0.0",
		"ecommerce/order_processing@1.0.0", "microservices/user_registration@1.0.0", "payments/process_refund@2.1.0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("templates %q, want %q", got, want)
	}
}
