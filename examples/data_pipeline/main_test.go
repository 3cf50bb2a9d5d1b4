package main

import (
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/exampleutil/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTemplateIsTaskers(t *testing.T) {
	exampletest.SameAsTestdata(t, templateYAML, "data_pipeline_analytics.yaml")
}

func TestRun(t *testing.T) {
	exampletest.Check(t, run, templateYAML,
		exampletest.Case{Name: "three days", Args: []string{"-start", "2026-01-30", "-end", "2026-02-01"}, State: tasker.TaskComplete,
			Results: map[string]string{
				// widget: 1, 2, 3 units at 10; gadget: 2 a day at 25.
				"transform_sales": `{"days":3,"daily_total":{"2026-01-30":60,"2026-01-31":70,"2026-02-01":80},
					"by_product":{"gadget":150,"widget":60},"units":12,"revenue":210,"top_product":"gadget"}`,
				"transform_inventory": `{"units":165,"reorder":["gizmo","widget"]}`,
				"transform_customers": `{"customers":4,"by_segment":{"new":1,"regular":2,"vip":1},"avg_lifetime_value":562.5}`,
				"generate_insights": `{"period":"2026-01-30..2026-02-01","insights":[
					"revenue 210.00 over 3 days (70.00 a day), 12 units; top product gadget",
					"2 products at or below their reorder point: gizmo, widget",
					"1 of 4 customers are VIP (25%); average lifetime value 562.50"]}`,
			},
			Output: []string{`analytics_pipeline: complete`, `(?m)^insights for 2026-01-30\.\.2026-02-01:$`,
				`(?m)^  - revenue 210\.00 over 3 days \(70\.00 a day\), 12 units; top product gadget$`}},
		exampletest.Case{Name: "empty range", Args: []string{"-start", "2026-02-01", "-end", "2026-01-01"}, State: tasker.TaskFailed,
			Steps:  map[string]tasker.StepState{"extract_sales_data": tasker.StepFailed, "aggregate_metrics": tasker.StepPending},
			Output: []string{`validation_error \[BAD_DATE_RANGE\]`}},
		exampletest.Case{Name: "transform fails", Args: []string{"-fail", "transform_inventory"}, State: tasker.TaskFailed,
			Steps: map[string]tasker.StepState{"extract_inventory_data": tasker.StepComplete,
				"transform_inventory": tasker.StepFailed, "aggregate_metrics": tasker.StepPending, "generate_insights": tasker.StepPending},
			Output: []string{`analytics_pipeline: error`, `FAILED_ON_PURPOSE`}},
	)
}
