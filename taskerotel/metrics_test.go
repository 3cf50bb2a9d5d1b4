package taskerotel_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/sqlite"
	"github.com/gotasker/tasker/taskerotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// collect returns the metrics of r's reader by name.
func collect(t *testing.T, r *rig) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]metricdata.Aggregation)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// sumOf returns the value of the sum's point whose attributes include want.
func sumOf(t *testing.T, agg metricdata.Aggregation, want ...attribute.KeyValue) int64 {
	t.Helper()
	sum, ok := agg.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("aggregation %T, want an int64 sum", agg)
	}
	var total int64
	for _, p := range sum.DataPoints {
		if hasAll(p.Attributes, want) {
			total += p.Value
		}
	}
	return total
}

func hasAll(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// TestMetrics: step counters by namespace, template and step, attempt
// durations by outcome, ended tasks by state, the gauges, and the SQLite
// store's commits, each batch and its latency, with the values the run
// implies.
func TestMetrics(t *testing.T) {
	r := newTelemetry(t)
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "tasks.db"), &sqlite.Options{OnCommit: r.tel.ObserveCommit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r.engine(t, st, map[string]tasker.StepHandler{"test.charge": flaky(), "test.ship": failing()}, false)
	id, err := r.eng.Submit(context.Background(), tasker.SubmitRequest{Namespace: "shop", Name: "order"})
	if err != nil {
		t.Fatal(err)
	}
	m := collect(t, r) // before Start: the task is pending
	shop := []attribute.KeyValue{taskerotel.AttrNamespace.String("shop"), taskerotel.AttrTemplate.String("order")}
	if got := gaugeOf(t, m[taskerotel.MetricTasks], append(shop, taskerotel.AttrState.String("pending"))...); got != 1 {
		t.Errorf("pending tasks = %d, want 1", got)
	}
	if got := gaugeOf(t, m[taskerotel.MetricQueueDepth]); got != 0 {
		t.Errorf("queue depth = %d before Start, want 0", got)
	}
	if err := r.eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if task := r.wait(t, id); task.State != tasker.TaskFailed {
		t.Fatalf("task state = %s, want error", task.State)
	}
	r.stop(t) // every event handled
	m = collect(t, r)
	charge := append(shop, taskerotel.AttrStep.String("charge"))
	ship := append(shop[:2:2], taskerotel.AttrStep.String("ship"))
	for _, c := range []struct {
		metric string
		attrs  []attribute.KeyValue
		want   int64
	}{
		{taskerotel.MetricStepsStarted, charge, 2}, {taskerotel.MetricStepsStarted, ship, 1},
		{taskerotel.MetricStepsRetried, charge, 1}, {taskerotel.MetricStepsCompleted, charge, 1},
		{taskerotel.MetricStepsFailed, ship, 1}, {taskerotel.MetricStepsCompleted, ship, 0},
		{taskerotel.MetricTasksEnded, append(shop[:2:2], taskerotel.AttrState.String("error")), 1},
	} {
		if got := sumOf(t, m[c.metric], c.attrs...); got != c.want {
			t.Errorf("%s %v = %d, want %d", c.metric, c.attrs, got, c.want)
		}
	}
	if n := histCount(t, m[taskerotel.MetricAttemptDuration], append(charge, taskerotel.AttrOutcome.String("retrying"))...); n != 1 {
		t.Errorf("charge attempts that will be retried: %d durations, want 1", n)
	}
	if n := histCount(t, m[taskerotel.MetricAttemptDuration]); n != 3 {
		t.Errorf("%d attempt durations, want 3", n)
	}
	commits, requests := st.CommitStats()
	batches, ok := m[taskerotel.MetricCommitBatch].(metricdata.Histogram[int64])
	if !ok || len(batches.DataPoints) != 1 || int64(batches.DataPoints[0].Count) != commits ||
		batches.DataPoints[0].Sum != requests {
		t.Errorf("commit batch sizes = %+v, want %d commits of %d requests in all", m[taskerotel.MetricCommitBatch], commits, requests)
	}
	if n := histCount(t, m[taskerotel.MetricCommitDuration]); int64(n) != commits || commits == 0 {
		t.Errorf("%d commit durations, want one per commit (%d)", n, commits)
	}
}

// gaugeOf returns the value of the gauge's point whose attributes include
// want, 0 when none.
func gaugeOf(t *testing.T, agg metricdata.Aggregation, want ...attribute.KeyValue) int64 {
	t.Helper()
	g, ok := agg.(metricdata.Gauge[int64])
	if !ok {
		t.Fatalf("aggregation %T, want an int64 gauge", agg)
	}
	for _, p := range g.DataPoints {
		if hasAll(p.Attributes, want) {
			return p.Value
		}
	}
	return 0
}

// histCount returns how many values the float histogram's points whose
// attributes include want counted.
func histCount(t *testing.T, agg metricdata.Aggregation, want ...attribute.KeyValue) uint64 {
	t.Helper()
	h, ok := agg.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("aggregation %T, want a float64 histogram", agg)
	}
	var n uint64
	for _, p := range h.DataPoints {
		if hasAll(p.Attributes, want) {
			n += p.Count
		}
	}
	return n
}
