package main

import (
	"errors"
	"testing"
	"time"

	"github.com/gotasker/tasker"
	"github.com/gotasker/tasker/store/memory"
)

// TestClosedLoop runs the closed loop on each store with the decode body
// and checks the lines: every task completed, the steps add up, at most
// -inflight tasks were ever in flight, and the CPU was measured.
func TestClosedLoop(t *testing.T) {
	const tasks, inflight = 12, 3
	for _, st := range []string{"memory", "sqlite"} {
		t.Run(st, func(t *testing.T) {
			t.Parallel()
			lines := runLines(t, "-store", st, "-shape", "diamond,wide,many", "-width", "10",
				"-tasks", "12", "-inflight", "3", "-body", "decode")
			if len(lines) != 3 {
				t.Fatalf("got %d lines, want 3", len(lines))
			}
			for _, r := range lines {
				checkClosed(t, r, inflight)
				if r.Tasks != tasks || r.Complete != tasks || r.Duration != "" {
					t.Errorf("%s: tasks %d, complete %d, duration %q; want %d, %d, none",
						r.Shape, r.Tasks, r.Complete, r.Duration, tasks, tasks)
				}
				// The SQLite store counts its commits; the memory store has none.
				if (st == "sqlite") != (r.RequestsPerCommit >= 1) {
					t.Errorf("%s on %s: requests_per_commit %v", r.Shape, st, r.RequestsPerCommit)
				}
			}
		})
	}
}

// TestClosedLoopDuration checks that -duration runs the closed loop for a
// time rather than a count: the line names the duration and its figures
// hold together, and -median takes the most in flight of its runs.
func TestClosedLoopDuration(t *testing.T) {
	lines := runLines(t, "-shape", "diamond", "-inflight", "2", "-duration", "20ms",
		"-repeat", "2", "-median")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3", len(lines))
	}
	for _, r := range lines[:2] {
		checkClosed(t, r, 2)
		if r.Duration != "20ms" || r.Tasks < 1 || r.Complete != r.Tasks {
			t.Errorf("run %d: duration %q, tasks %d, complete %d", r.Run, r.Duration, r.Tasks, r.Complete)
		}
	}
	if m := lines[2]; m.Stat != "median" || m.MaxInflight != max(lines[0].MaxInflight, lines[1].MaxInflight) {
		t.Errorf("median line: %+v", m)
	}
}

// checkClosed checks the fields every closed-loop line has.
func checkClosed(t *testing.T, r result, inflight int) {
	t.Helper()
	if r.Mode != "closed" || r.Inflight != inflight || r.Submitters != inflight {
		t.Errorf("%s: mode %q, inflight %d, submitters %d; want closed, %d, %d",
			r.Shape, r.Mode, r.Inflight, r.Submitters, inflight, inflight)
	}
	if r.MaxInflight < 1 || r.MaxInflight > inflight {
		t.Errorf("%s: max_inflight %d, want 1 to %d", r.Shape, r.MaxInflight, inflight)
	}
	if r.Steps != r.Tasks*r.StepsPerTask || r.StepsPerSec <= 0 || r.P99us < r.P50us {
		t.Errorf("%s: implausible figures %+v", r.Shape, r)
	}
	if _, ok := processCPU(); ok && (r.CPUSeconds <= 0 || r.CPUUtil <= 0) {
		t.Errorf("%s: cpu_seconds %v, cpu_util %v: want both positive", r.Shape, r.CPUSeconds, r.CPUUtil)
	}
}

// TestDecodeBody checks the decode body on a fabricated step: it reads its
// parents' results and returns its own, and fails permanently when a
// parent's result is missing or not that parent's.
func TestDecodeBody(t *testing.T) {
	body := decodeBody(diamondSteps())
	parent := func(name string) map[string]any { return map[string]any{"step": name, "ok": true, "parents": 1} }
	good := map[string]any{"process_payment": parent("process_payment"), "update_inventory": parent("update_inventory")}
	v, err := callBody(t, body, "create_order", good)
	if err != nil {
		t.Fatalf("good parents: %v", err)
	}
	if m, _ := v.(map[string]any); m["step"] != "create_order" || m["ok"] != true || m["parents"] != 2 {
		t.Errorf("good parents: result %v", v)
	}
	for name, results := range map[string]map[string]any{
		"missing": {"process_payment": parent("process_payment")},
		"other's": {"process_payment": parent("process_payment"), "update_inventory": parent("validate_cart")},
		"not ok":  {"process_payment": parent("process_payment"), "update_inventory": map[string]any{"step": "update_inventory"}},
	} {
		_, err := callBody(t, body, "create_order", results)
		var se *tasker.StepError
		if !errors.As(err, &se) || se.Type != tasker.ErrorPermanent || se.Retryable {
			t.Errorf("%s parent result: err %v, want a permanent StepError", name, err)
		}
	}
}

// callBody runs body as step with the given upstream results.
func callBody(t *testing.T, body stepBody, step string, results map[string]any) (any, error) {
	t.Helper()
	sc, err := tasker.NewStepContext(tasker.FakeStep{Name: step, Results: results})
	if err != nil {
		t.Fatal(err)
	}
	return body(sc)
}

// countingStore is a store with the accessor requests_per_commit reads.
type countingStore struct {
	*memory.Store
	commits, requests int64
}

func (s *countingStore) CommitStats() (int64, int64) { return s.commits, s.requests }

// TestRequestsPerCommit checks that a store with CommitStats gets
// requests_per_commit from the counters' growth over the drive, and one
// without gets none.
func TestRequestsPerCommit(t *testing.T) {
	st := &countingStore{Store: memory.New(), commits: 5, requests: 7}
	m := startMeter(st)
	st.commits, st.requests = 15, 457
	u := m.stop()
	spec := runSpec{store: "memory", shape: shape{name: "diamond", steps: diamondSteps()}}
	now := time.Now()
	samples := []sample{{submitted: now, done: now.Add(time.Millisecond), complete: true}}
	if r := summarize(spec, samples, u); r.RequestsPerCommit != 45 {
		t.Errorf("requests_per_commit %v, want 45 (450 requests in 10 commits)", r.RequestsPerCommit)
	}
	if u := startMeter(memory.New()).stop(); u.commits != 0 || u.requests != 0 {
		t.Errorf("a store without CommitStats counted %d commits, %d requests", u.commits, u.requests)
	}
}
