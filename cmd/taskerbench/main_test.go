package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// TestShapes runs every shape once on each store with tiny sizes and checks
// each line: it parses, counts the steps the shape has, and every task
// completed.
func TestShapes(t *testing.T) {
	const tasks = 5
	wantSteps := map[string]int{
		"diamond": 5,
		"wide":    10 + 2, // -width 10
		"chain":   5,      // -length 5
		"tree":    15,     // -depth 3: 2^4-1
		"many":    5,
	}
	for _, st := range []string{"memory", "sqlite"} {
		t.Run(st, func(t *testing.T) {
			t.Parallel()
			lines := runLines(t, "-store", st, "-shape", "all", "-tasks", "5",
				"-width", "10", "-length", "5", "-depth", "3")
			if len(lines) != len(shapeNames) {
				t.Fatalf("got %d lines, want one per shape (%d)", len(lines), len(shapeNames))
			}
			for i, r := range lines {
				if r.Shape != shapeNames[i] || r.Store != st || r.Stat != "run" || r.Run != 1 {
					t.Errorf("line %d: got %s/%s %s %d, want %s/%s run 1", i, r.Store, r.Shape, r.Stat, r.Run, st, shapeNames[i])
				}
				if want := tasks * wantSteps[r.Shape]; r.Tasks != tasks || r.Steps != want || r.Complete != tasks {
					t.Errorf("%s: tasks %d, steps %d, complete %d; want %d, %d, %d",
						r.Shape, r.Tasks, r.Steps, r.Complete, tasks, want, tasks)
				}
				if r.Seconds <= 0 || r.StepsPerSec <= 0 || r.P50us <= 0 || r.P99us < r.P50us || r.PeakHeapMiB <= 0 {
					t.Errorf("%s: implausible figures %+v", r.Shape, r)
				}
				wantMode, wantMax := "serial", 1 // serial: one task in flight at a time
				if r.Shape == "many" {
					wantMode, wantMax = "open", tasks
				}
				if r.Mode != wantMode || r.Inflight != 0 || r.Body != "noop" || r.MaxInflight < 1 || r.MaxInflight > wantMax {
					t.Errorf("%s: mode %q inflight %d body %q max_inflight %d; want %s, 0, noop, 1 to %d",
						r.Shape, r.Mode, r.Inflight, r.Body, r.MaxInflight, wantMode, wantMax)
				}
			}
		})
	}
}

// TestRepeatMedian checks that -repeat prints one line per run and -median
// one more with the medians.
func TestRepeatMedian(t *testing.T) {
	lines := runLines(t, "-shape", "many", "-tasks", "5", "-repeat", "3", "-median",
		"-sleep", "1ms", "-workers", "4", "-submitters", "2")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4", len(lines))
	}
	for i, r := range lines[:3] {
		if r.Stat != "run" || r.Run != i+1 || r.Workers != 4 || r.Submitters != 2 || r.Sleep != "1ms" {
			t.Errorf("line %d: %+v", i, r)
		}
	}
	if m := lines[3]; m.Stat != "median" || m.Runs != 3 || m.Complete != 5 || m.P50us < 1000 {
		t.Errorf("median line: %+v", m)
	}
}

// TestBadFlags checks that invalid flags are errors and print nothing.
func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-store", "oracle"},
		{"-shape", "wide,ring"},
		{"-width", "0", "-shape", "wide"},
		{"-repeat", "0"},
		{"-depth", "99", "-shape", "tree"},
		{"extra"},
		{"-inflight", "-1"},
		{"-inflight", "2", "-submitters", "3"},
		{"-duration", "1s"},
		{"-inflight", "2", "-duration", "1s", "-tasks", "5"},
		{"-inflight", "2", "-duration", "-1s"},
		{"-body", "parse"},
	} {
		var out bytes.Buffer
		if err := run(args, &out, io.Discard); err == nil || out.Len() > 0 {
			t.Errorf("%q: err %v, output %q; want an error and no output", args, err, out.String())
		}
	}
}

// runLines runs the command with args and decodes its output, line by line.
func runLines(t *testing.T, args ...string) []result {
	t.Helper()
	var out, errs bytes.Buffer
	if err := run(args, &out, &errs); err != nil {
		t.Fatalf("run %q: %v\n%s", args, err, errs.String())
	}
	var lines []result
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r result
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, r)
	}
	return lines
}
