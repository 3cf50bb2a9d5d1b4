// Command batch_csv values a product inventory from a CSV in batches: the
// batchable step analyze_csv splits the rows of testdata/products.csv
// (1,000 products) into batches of 200, a batch worker per batch —
// process_csv_batch_001 … _005, at most 3 at once — sums price × quantity
// overall and per category, one row at a time, saving a checkpoint every
// 50 rows, and the deferred convergence aggregate_inventory adds up every
// batch's totals. It prints the outcome, every step and the valuation:
//
//	go run ./examples/batch_csv
//	go run ./examples/batch_csv -fail-batch 003   # fails once after 100 rows, resumes from its checkpoint
//	go run ./examples/batch_csv -csv other.csv -store memory
//	go run ./examples/batch_csv -fail process_csv_batch   # every worker fails for good
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/exampleutil"
)

//go:embed template.yaml
var templateYAML []byte

const templateFile = "examples/batch_csv/template.yaml"

func main() { exampleutil.Main("batch_csv", run) }

func run(ctx context.Context, args []string, out io.Writer) error {
	return runWith(ctx, args, out, hooks{})
}

// runWith runs the example with hooks watching its batch workers.
func runWith(ctx context.Context, args []string, out io.Writer, k hooks) error {
	tmpl, err := tasker.ParseTemplate(templateFile, templateYAML)
	if err != nil {
		return err
	}
	h := &handlers{batchSize: tmpl.Step("analyze_csv").BatchConfig.BatchSize, hooks: k}
	const ns = "BatchCsv::"
	ex := exampleutil.Example{
		Name: "batch_csv", TemplateFile: templateFile, TemplateYAML: templateYAML,
		Flags: func(fs *flag.FlagSet) func() (any, error) { return csvFlags(fs, &h.failBatch) },
		Handlers: map[string]tasker.StepHandler{
			ns + "AnalyzeCsvHandler":         tasker.HandlerFunc(h.analyzeCSV),
			ns + "ProcessCsvBatchHandler":    tasker.HandlerFunc(h.processBatch),
			ns + "AggregateInventoryHandler": tasker.HandlerFunc(h.aggregateInventory),
		},
		Summary: printValuation,
	}
	return ex.Run(ctx, args, out)
}

var batchIDFlag = regexp.MustCompile(`^[0-9]{3,}$`)

// csvFlags declares -csv, the task input's csv_path, and -fail-batch.
func csvFlags(fs *flag.FlagSet, failBatch *string) func() (any, error) {
	path := fs.String("csv", filepath.Join("testdata", "products.csv"), "the product CSV (id,name,category,price,quantity)")
	fs.StringVar(failBatch, "fail-batch", "", "a batch id, such as 003, whose worker fails once, retryably, after "+
		fmt.Sprint(failAfterRows)+" rows, and resumes from its checkpoint")
	return func() (any, error) {
		if *failBatch != "" && !batchIDFlag.MatchString(*failBatch) {
			return nil, fmt.Errorf("-fail-batch %q: want a batch id such as 003", *failBatch)
		}
		abs, err := filepath.Abs(*path)
		return map[string]string{"csv_path": abs}, err
	}
}

// printValuation prints how each batch worker went and, once
// aggregate_inventory completed, the inventory's value.
func printValuation(w io.Writer, t *tasker.Task) {
	for _, s := range t.Steps {
		var b BatchSummary
		if !strings.HasPrefix(s.Name, "process_csv_batch_") || json.Unmarshal(s.Result, &b) != nil {
			continue
		}
		fmt.Fprintf(w, "batch %s: %d rows; its last attempt, %d of %d, began at row %d and processed %d\n",
			b.BatchID, b.Rows, b.Attempt, s.Attempts, b.ResumedAt, b.Processed)
	}
	var inv Inventory
	if s := t.Step("aggregate_inventory"); s == nil || s.State != tasker.StepComplete || json.Unmarshal(s.Result, &inv) != nil {
		return
	}
	fmt.Fprintf(w, "inventory value: %s over %d rows in %d batches\n", dollars(inv.ValueCents), inv.Rows, inv.Batches)
	for _, c := range slices.Sorted(maps.Keys(inv.ByCategory)) {
		fmt.Fprintf(w, "  %-12s %s\n", c, dollars(inv.ByCategory[c]))
	}
}

// dollars formats cents as 1234.56.
func dollars(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }
