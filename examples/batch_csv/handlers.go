package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/gotasker/tasker"
)

// failAfterRows is how many rows the batch -fail-batch names processes in
// its first attempt before it fails.
const failAfterRows = 100

// Totals are sums of inventory value, in cents.
type Totals struct {
	Rows       int              `json:"rows"`
	ValueCents int64            `json:"value_cents"`
	ByCategory map[string]int64 `json:"by_category_cents"`
}

// add counts product p in t.
func (t *Totals) add(p Product) {
	if t.ByCategory == nil {
		t.ByCategory = make(map[string]int64)
	}
	t.Rows++
	t.ValueCents += p.Value()
	t.ByCategory[p.Category] += p.Value()
}

// merge adds u to t.
func (t *Totals) merge(u Totals) {
	if t.ByCategory == nil {
		t.ByCategory = make(map[string]int64)
	}
	t.Rows += u.Rows
	t.ValueCents += u.ValueCents
	for c, v := range u.ByCategory {
		t.ByCategory[c] += v
	}
}

// Analysis is analyze_csv's result: the batches, and the rows it found.
type Analysis struct {
	tasker.Batches
	Rows int `json:"rows"`
}

// progress is a batch worker's checkpoint: the next row to process and
// the totals of the rows before it.
type progress struct {
	Next int `json:"next_row"`
	Totals
}

// BatchSummary is a batch worker's result: its batch's totals, and how the
// attempt that completed it went.
type BatchSummary struct {
	BatchID   string `json:"batch_id"`
	Attempt   int    `json:"attempt"`
	ResumedAt int    `json:"resumed_at"` // the row this attempt began at
	Processed int    `json:"processed"`  // the rows this attempt processed
	Totals
}

// Inventory is aggregate_inventory's result.
type Inventory struct {
	Batches int `json:"batches"`
	Totals
}

// hooks let a test watch the batch workers; nil functions are not called.
type hooks struct {
	enter, leave func(step string)                   // around each attempt
	row          func(step string, attempt, row int) // after each row it processed
}

// call calls f(step) when f is set.
func (hooks) call(f func(step string), step string) {
	if f != nil {
		f(step)
	}
}

// handlers are the workflow's handlers.
type handlers struct {
	batchSize int    // analyze_csv's batch_config.batch_size
	failBatch string // the batch whose first attempt fails after failAfterRows; "" for none
	hooks     hooks
}

// analyzeCSV checks every row of the CSV and splits the rows into batches
// of batch_size, or none for a CSV without rows.
func (h *handlers) analyzeCSV(_ context.Context, step *tasker.StepContext) (any, error) {
	var path string
	if err := step.Input("csv_path", &path); err != nil {
		return nil, err
	}
	n, err := scan(path, 0, math.MaxInt, func(int, Product) error { return nil })
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return Analysis{Batches: tasker.NoBatches()}, nil
	}
	return Analysis{Batches: tasker.CreateBatches(tasker.CursorRanges(n, h.batchSize)), Rows: n}, nil
}

// processBatch values the rows of its batch one at a time, from its last
// checkpoint (or its first row), saving a checkpoint every
// checkpoint_every rows.
func (h *handlers) processBatch(ctx context.Context, step *tasker.StepContext) (any, error) {
	h.hooks.call(h.hooks.enter, step.StepName())
	defer h.hooks.call(h.hooks.leave, step.StepName())
	var cfg struct {
		Every int `json:"checkpoint_every"`
	}
	var path string
	cur, ok := step.BatchCursor()
	if err := errors.Join(step.Initialization(&cfg), step.Input("csv_path", &path)); err != nil || !ok {
		return nil, errors.Join(err, errors.New("not a batch worker"))
	}
	cp := progress{Next: cur.StartCursor}
	if _, err := step.Checkpoint(&cp); err != nil {
		return nil, err
	}
	out := BatchSummary{BatchID: cur.BatchID, Attempt: step.Attempt(), ResumedAt: cp.Next}
	_, err := scan(path, cp.Next, cur.EndCursor, func(row int, p Product) error {
		if err := h.injected(step, cur, row); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		cp.add(p)
		cp.Next, out.Processed = row+1, out.Processed+1
		if h.hooks.row != nil {
			h.hooks.row(step.StepName(), step.Attempt(), row)
		}
		if (cp.Next-cur.StartCursor)%max(cfg.Every, 1) == 0 && cp.Next < cur.EndCursor {
			return step.SaveCheckpoint(cp)
		}
		return nil
	})
	out.Totals = cp.Totals
	return out, err
}

// injected returns the retryable failure of the batch -fail-batch names, in
// its first attempt, at row failAfterRows of its batch; nil otherwise.
func (h *handlers) injected(step *tasker.StepContext, cur tasker.BatchCursor, row int) error {
	if cur.BatchID != h.failBatch || step.Attempt() != 1 || row-cur.StartCursor != failAfterRows {
		return nil
	}
	return &tasker.StepError{Type: tasker.ErrorRetryable, Code: "INJECTED_FAILURE", Retryable: true,
		Message: fmt.Sprintf("batch %s failed on purpose after %d rows (-fail-batch %s)", cur.BatchID, failAfterRows, cur.BatchID)}
}

// aggregateInventory adds up the totals of every batch, once all have
// completed, and checks that they cover every row analyze_csv found.
func (h *handlers) aggregateInventory(_ context.Context, step *tasker.StepContext) (any, error) {
	var a Analysis
	if err := step.DependencyResult("analyze_csv", &a); err != nil {
		return nil, err
	}
	inv := Inventory{Totals: Totals{ByCategory: map[string]int64{}}}
	for _, br := range step.BatchResults("process_csv_batch") {
		var s BatchSummary
		if err := decodeBatch(br, &s); err != nil {
			return nil, err
		}
		inv.Batches++
		inv.merge(s.Totals)
	}
	if inv.Rows != a.Rows {
		return nil, &tasker.StepError{Type: tasker.ErrorPermanent, Code: "ROW_COUNT_MISMATCH",
			Message: fmt.Sprintf("the batches valued %d rows of %d", inv.Rows, a.Rows)}
	}
	return inv, nil
}

// decodeBatch decodes a completed batch worker's result into s; a worker
// that did not complete is a permanent error naming it.
func decodeBatch(br tasker.BatchResult, s *BatchSummary) error {
	if br.State != tasker.StepComplete {
		return &tasker.StepError{Type: tasker.ErrorPermanent, Code: "BATCH_INCOMPLETE",
			Message: fmt.Sprintf("%s is %s", br.Step, br.State)}
	}
	return json.Unmarshal(br.Result, s)
}
