package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/internal/exampleutil"
	"github.com/gotasker/tasker/internal/exampleutil/exampletest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite testdata/products.csv from generateProducts")

// productsCSV is the CSV the example ships, from this package's directory.
var productsCSV = filepath.Join("..", "..", "testdata", "products.csv")

// generateProducts returns the shipped CSV: n products whose fields are
// fixed functions of their id, so the file is the same on every run.
func generateProducts(n int) []byte {
	categories := []string{"electronics", "garden", "kitchen", "office", "toys"}
	adjectives := []string{"Compact", "Deluxe", "Eco", "Rugged", "Smart", "Classic", "Mini"}
	nouns := []string{"Lamp", "Kettle", "Drill", "Chair", "Speaker", "Planter", "Robot", "Stapler"}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"id", "name", "category", "price", "quantity"})
	for id := 1; id <= n; id++ {
		cents := 199 + id*7919%49801 // 1.99 … 499.99
		w.Write([]string{strconv.Itoa(id),
			fmt.Sprintf("%s %s %d", adjectives[id*3%len(adjectives)], nouns[id*5%len(nouns)], id),
			categories[id*13/7%len(categories)], fmt.Sprintf("%d.%02d", cents/100, cents%100),
			strconv.Itoa(id * 37 % 250)}) // 0 … 249 in stock
	}
	w.Flush()
	return b.Bytes()
}

// TestProductsCSV: the shipped CSV is generateProducts(1000); -update
// rewrites it.
func TestProductsCSV(t *testing.T) {
	want := generateProducts(1000)
	if *update {
		if err := os.WriteFile(productsCSV, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := os.ReadFile(productsCSV); err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s differs from generateProducts(1000) (%v); go test -run TestProductsCSV -update rewrites it", productsCSV, err)
	}
}

// expected values the CSV at path directly, row by row, as the test's own
// reading: the total and per-category value in cents, and the row count.
func expected(t *testing.T, path string) (total int64, byCategory map[string]int64, rows int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	byCategory = map[string]int64{}
	for _, r := range recs[1:] {
		price, err1 := strconv.ParseInt(strings.Replace(r[3], ".", "", 1), 10, 64)
		qty, err2 := strconv.ParseInt(r[4], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("row %v: %v %v", r, err1, err2)
		}
		total += price * qty
		byCategory[r[2]] += price * qty
	}
	return total, byCategory, len(recs) - 1
}

// inventoryJSON is aggregate_inventory's expected result for path.
func inventoryJSON(t *testing.T, path string, batches int) string {
	total, byCategory, rows := expected(t, path)
	return fmt.Sprintf(`{"batches":%d,"rows":%d,"value_cents":%d,"by_category_cents":%s}`, batches, rows, total, mustJSON(t, byCategory))
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// attempt is one attempt of a batch worker.
type attempt struct {
	step string
	n    int
}

// observer watches the batch workers through the example's hooks: how
// many run at once, and which attempt processed each row. The first
// parallelism attempts wait for each other before they go on, so that
// the limit is reached and a worker over it would be seen.
type observer struct {
	parallelism int
	mu          sync.Mutex
	running     int
	maxRunning  int
	entered     int
	full        chan struct{} // closed once parallelism attempts have entered
	timedOut    bool
	rows        map[int][]attempt
}

func newObserver(parallelism int) *observer {
	return &observer{parallelism: parallelism, full: make(chan struct{}), rows: make(map[int][]attempt)}
}

func (o *observer) hooks() hooks {
	return hooks{enter: o.enter, leave: o.leave, row: o.row}
}

func (o *observer) enter(string) {
	o.mu.Lock()
	o.running++
	o.maxRunning = max(o.maxRunning, o.running)
	o.entered++
	first := o.entered <= o.parallelism
	if o.entered == o.parallelism {
		close(o.full)
	}
	o.mu.Unlock()
	if !first {
		return
	}
	select {
	case <-o.full:
	case <-time.After(10 * time.Second): // fewer than parallelism ever ran at once
		o.mu.Lock()
		o.timedOut = true
		o.mu.Unlock()
	}
}

func (o *observer) leave(string) {
	o.mu.Lock()
	o.running--
	o.mu.Unlock()
}

func (o *observer) row(step string, n, row int) {
	o.mu.Lock()
	o.rows[row] = append(o.rows[row], attempt{step, n})
	o.mu.Unlock()
}

// check checks that exactly parallelism workers ran at once at most, and
// that each of rows rows was processed exactly once, by the attempt
// want returns for it.
func (o *observer) check(t *testing.T, rows int, want func(row int) attempt) {
	t.Helper()
	if o.timedOut || o.maxRunning != o.parallelism {
		t.Errorf("%d batch workers ran at once at most (waited in vain: %v), want %d", o.maxRunning, o.timedOut, o.parallelism)
	}
	wrong := 0
	for row := range rows {
		if got := o.rows[row]; len(got) != 1 || got[0] != want(row) {
			if wrong++; wrong <= 5 {
				t.Errorf("row %d processed by %v, want once, by %v", row, got, want(row))
			}
		}
	}
	if wrong > 5 {
		t.Errorf("and %d more rows", wrong-5)
	}
	if len(o.rows) != rows {
		t.Errorf("%d rows processed, want %d", len(o.rows), rows)
	}
}

// checkpoints returns the attempts in which step s saved each checkpoint.
func checkpoints(s *tasker.Step) []int {
	var out []int
	for _, tr := range s.Transitions {
		if tr.Reason == "checkpoint" {
			out = append(out, tr.Attempt)
		}
	}
	return out
}

// inspectCheckpoints returns a check that each batch worker saved its
// checkpoints (every 50 rows but at its end) in the attempts want lists.
func inspectCheckpoints(want map[string][]int) func(*testing.T, *tasker.Task) {
	return func(t *testing.T, task *tasker.Task) {
		for step, attempts := range want {
			if s := task.Step(step); s == nil || !slices.Equal(checkpoints(s), attempts) {
				t.Errorf("%s saved checkpoints in attempts %v, want %v", step, checkpoints(s), attempts)
			}
		}
	}
}

// byRow is the attempt that processes a row in a clean run: the first of
// its batch of 200.
func byRow(row int) attempt { return attempt{fmt.Sprintf("process_csv_batch_%03d", row/200+1), 1} }

// workerSteps returns the names of the five workers of the shipped CSV.
func workerSteps() []string {
	var out []string
	for k := 1; k <= 5; k++ {
		out = append(out, fmt.Sprintf("process_csv_batch_%03d", k))
	}
	return out
}

// TestValuation: a clean run values every row once, in 5 batches of 200,
// at most 3 at once, and its aggregate is the value computed directly from
// the CSV; each worker saved 3 checkpoints.
func TestValuation(t *testing.T) {
	o := newObserver(3)
	total, _, _ := expected(t, productsCSV)
	every := map[string][]int{}
	for _, w := range workerSteps() {
		every[w] = []int{1, 1, 1}
	}
	exampletest.Check(t, o.runner(), templateYAML, exampletest.Case{Name: "clean", State: tasker.TaskComplete,
		Args:    []string{"-csv", productsCSV},
		Results: map[string]string{"aggregate_inventory": inventoryJSON(t, productsCSV, 5)},
		Output: []string{`(?m)^process_csv_batch_005\s+complete\s+1\s`, `(?m)^batch 003: 200 rows; its last attempt, 1 of 1, began at row 400 and processed 200$`,
			fmt.Sprintf(`(?m)^inventory value: %d\.%02d over 1000 rows in 5 batches$`, total/100, total%100)},
		Inspect: inspectCheckpoints(every)})
	o.check(t, 1000, byRow)
}

// TestFailBatchResumes: with -fail-batch 003, that worker fails once after
// 100 rows and its second attempt resumes from its checkpoint: rows
// before it are not processed again, and the aggregate is the clean
// run's.
func TestFailBatchResumes(t *testing.T) {
	o := newObserver(3)
	exampletest.Check(t, o.runner(), templateYAML, exampletest.Case{Name: "fail 003", State: tasker.TaskComplete,
		Args:     []string{"-csv", productsCSV, "-fail-batch", "003"},
		Attempts: map[string]int{"process_csv_batch_003": 2},
		Results:  map[string]string{"aggregate_inventory": inventoryJSON(t, productsCSV, 5)},
		Output: []string{`(?m)^process_csv_batch_003\s+complete\s+2\s`,
			`last error \(attempt 1\): retryable_error \[INJECTED_FAILURE\]: batch 003 failed on purpose after 100 rows`,
			`(?m)^batch 003: 200 rows; its last attempt, 2 of 2, began at row 500 and processed 100$`},
		Inspect: inspectCheckpoints(map[string][]int{"process_csv_batch_003": {1, 1, 2}, "process_csv_batch_004": {1, 1, 1}})})
	o.check(t, 1000, func(row int) attempt {
		if row >= 500 && row < 600 {
			return attempt{"process_csv_batch_003", 2}
		}
		return byRow(row)
	})
}

// TestOtherRuns: a CSV without rows creates no batch worker and values
// nothing; a bad header fails analyze_csv for good, and nothing after it
// is created; -fail on the worker template fails its workers for good,
// and fail_fast ends the task without the aggregate.
func TestOtherRuns(t *testing.T) {
	dir := t.TempDir()
	empty, bad := filepath.Join(dir, "empty.csv"), filepath.Join(dir, "bad.csv")
	if err := errors.Join(os.WriteFile(empty, []byte("id,name,category,price,quantity\n"), 0o644),
		os.WriteFile(bad, []byte("id,name,price\n1,x,2.00\n"), 0o644)); err != nil {
		t.Fatal(err)
	}
	exampletest.Check(t, run, templateYAML,
		exampletest.Case{Name: "no rows", Args: []string{"-csv", empty}, State: tasker.TaskComplete,
			Results: map[string]string{"analyze_csv": `{"batch_processing_outcome":{"type":"no_batches"},"rows":0}`,
				"aggregate_inventory": `{"batches":0,"rows":0,"value_cents":0,"by_category_cents":{}}`},
			Output: []string{`(?m)^inventory value: 0\.00 over 0 rows in 0 batches$`},
			Inspect: func(t *testing.T, task *tasker.Task) {
				if len(task.Steps) != 2 {
					t.Errorf("steps %v, want analyze_csv and aggregate_inventory only", task.Steps)
				}
			}},
		exampletest.Case{Name: "bad header", Args: []string{"-csv", bad}, State: tasker.TaskFailed,
			Steps:  map[string]tasker.StepState{"analyze_csv": tasker.StepFailed, "aggregate_inventory": tasker.StepNotCreated},
			Output: []string{`permanent_error \[BAD_CSV\]: .*bad\.csv: the header must be id,name,category,price,quantity`}},
		// Every worker fails; under fail_fast the first failure stops the
		// task, so which of the three first workers (parallelism: 3) ran
		// before it is a race: each of them failed or never started, and
		// at least one failed. The workers after them never started.
		exampletest.Case{Name: "workers fail", Args: []string{"-csv", productsCSV, "-fail", "process_csv_batch"}, State: tasker.TaskFailed,
			Steps: map[string]tasker.StepState{"analyze_csv": tasker.StepComplete,
				"process_csv_batch_004": tasker.StepPending, "process_csv_batch_005": tasker.StepPending, "aggregate_inventory": tasker.StepPending},
			Output: []string{`permanent_error \[FAILED_ON_PURPOSE\]: failed on purpose \(-fail process_csv_batch\)`},
			Inspect: func(t *testing.T, task *tasker.Task) {
				failed := 0
				for _, name := range []string{"process_csv_batch_001", "process_csv_batch_002", "process_csv_batch_003"} {
					switch s := task.Step(name); {
					case s == nil:
						t.Errorf("no step %s", name)
					case s.State == tasker.StepFailed:
						failed++
					case s.State != tasker.StepPending:
						t.Errorf("%s is %s, want error or pending", name, s.State)
					}
				}
				if failed == 0 {
					t.Error("none of the first three workers failed")
				}
			}},
	)
}

// TestUsage: a -fail-batch that is no batch id is a usage error.
func TestUsage(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"-store", "memory", "-fail-batch", "3x"}, &out)
	var stderr bytes.Buffer
	if code := exampleutil.ExitCode("batch_csv", err, &stderr); code != 2 || !strings.Contains(stderr.String(), `-fail-batch "3x": want a batch id`) {
		t.Errorf("exit %d, stderr %q; want 2 and the reason", code, stderr.String())
	}
}

// runner returns the example's run function with o watching its workers.
func (o *observer) runner() exampleutil.RunFunc {
	return func(ctx context.Context, args []string, out io.Writer) error {
		return runWith(ctx, args, out, o.hooks())
	}
}
