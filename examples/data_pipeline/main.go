// Command data_pipeline runs Tasker's analytics pipeline once, on the
// template testdata/templates/tasker/data_pipeline_analytics.yaml (copied
// here as template.yaml): three extracts in parallel (sales, inventory,
// customers), a transform of each, an aggregate of the three and insights
// from it; then it prints the outcome, each step's timing and the insights:
//
//	go run ./examples/data_pipeline
//	go run ./examples/data_pipeline -start 2026-01-01 -end 2026-01-31 -store memory
//	go run ./examples/data_pipeline -start 2026-02-01 -end 2026-01-01   # fails: empty range
//	go run ./examples/data_pipeline -fail transform_inventory           # fails for good
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/exampleutil"
)

//go:embed template.yaml
var templateYAML []byte

func main() { exampleutil.Main("data_pipeline", run) }

func run(ctx context.Context, args []string, out io.Writer) error {
	const ns = "DataPipeline::StepHandlers::"
	ex := exampleutil.Example{
		Name: "data_pipeline", TemplateFile: "examples/data_pipeline/template.yaml", TemplateYAML: templateYAML,
		Flags: dateRangeFlags, Summary: printInsights,
		Handlers: map[string]tasker.StepHandler{
			ns + "ExtractSalesHandler":       tasker.HandlerFunc(extractSales),
			ns + "ExtractInventoryHandler":   tasker.HandlerFunc(extractInventory),
			ns + "ExtractCustomersHandler":   tasker.HandlerFunc(extractCustomers),
			ns + "TransformSalesHandler":     tasker.HandlerFunc(transformSales),
			ns + "TransformInventoryHandler": tasker.HandlerFunc(transformInventory),
			ns + "TransformCustomersHandler": tasker.HandlerFunc(transformCustomers),
			ns + "AggregateMetricsHandler":   tasker.HandlerFunc(aggregateMetrics),
			ns + "GenerateInsightsHandler":   tasker.HandlerFunc(generateInsights),
		},
	}
	return ex.Run(ctx, args, out)
}

// dateRangeFlags declares -start and -end, the task input's date_range.
func dateRangeFlags(fs *flag.FlagSet) func() (any, error) {
	start := fs.String("start", "2026-01-01", "date_range.start_date, YYYY-MM-DD")
	end := fs.String("end", "2026-01-02", "date_range.end_date, YYYY-MM-DD (inclusive)")
	return func() (any, error) { return Input{DateRange: DateRange{Start: *start, End: *end}}, nil }
}

// printInsights prints generate_insights' result, once it has one.
func printInsights(w io.Writer, t *tasker.Task) {
	var in Insights
	if s := t.Step("generate_insights"); s.State == tasker.StepComplete && json.Unmarshal(s.Result, &in) == nil {
		fmt.Fprintf(w, "insights for %s:\n", in.Period)
		for _, line := range in.Insights {
			fmt.Fprintf(w, "  - %s\n", line)
		}
	}
}
