package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

// The soak tests' loop: tasks in flight, Retention.MaxTasks and
// Retention.Interval.
const (
	soakInflight   = 8
	soakKeep       = 50
	soakCleanEvery = 5 * time.Millisecond
)

// soakLines makes a soak run of tasks diamonds on kind, retention on or
// off, keeping soakKeep tasks and cleaning every soakCleanEvery when on,
// and returns its lines.
func soakLines(t *testing.T, kind string, tasks int, retention bool) []soakLine {
	t.Helper()
	sh, err := newShape("diamond", sizes{})
	if err != nil {
		t.Fatal(err)
	}
	spec := soakSpec{store: kind, shape: sh, tasks: tasks, inflight: soakInflight, retention: retention,
		keepTasks: soakKeep, keepAge: time.Hour, cleanEvery: soakCleanEvery,
		reportEvery: tasks / 4, timeout: 5 * time.Minute}
	var lines []soakLine
	if err := soakOnce(spec, func(l soakLine) error { lines = append(lines, l); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 5 || lines[4].TasksDone != int64(tasks) {
		t.Fatalf("lines %+v, want 5, the last at %d tasks done", lines, tasks)
	}
	return lines
}

// TestSoakStaysSmallWithRetention: the same closed loop, with and without
// retention, on each store: with it the store keeps a bounded number of
// tasks, and the heap (memory) or the database file (SQLite) stays a
// fraction of what it grows to without. What the cleaner rightly keeps
// depends on how fast the loop runs: besides the soakKeep newest, those
// in flight and those that finished while the line was being taken (a
// few rounds of the submitters), the tasks that finished within its last
// Interval (it spares them) and since its last pass (it runs once an
// Interval): three Intervals' worth at the rate the line reports.
func TestSoakStaysSmallWithRetention(t *testing.T) {
	for _, tc := range []struct {
		store string
		tasks int
		size  func(soakLine) float64
		what  string
	}{
		{"memory", 20000, func(l soakLine) float64 { return l.HeapMiB }, "heap"},
		{"sqlite", 2000, func(l soakLine) float64 { return *l.DBMiB }, "database file"},
	} {
		if raceEnabled {
			tc.tasks /= 5
		}
		t.Run(tc.store, func(t *testing.T) {
			off, on := soakLines(t, tc.store, tc.tasks, false), soakLines(t, tc.store, tc.tasks, true)
			last := len(off) - 1
			if got := off[last].StoredTasks; got != tc.tasks {
				t.Errorf("without retention the store kept %d tasks, want all %d", got, tc.tasks)
			}
			for _, l := range on[1:] {
				bound := soakKeep + 3*soakInflight + int(math.Ceil(3*l.TasksPerSec*soakCleanEvery.Seconds()))
				if bound > tc.tasks/2 {
					t.Fatalf("at %.0f tasks/s retention may keep %d of %d tasks: too many to tell it from none",
						l.TasksPerSec, bound, tc.tasks)
				}
				if l.StoredTasks > bound {
					t.Errorf("with retention (keeping %d) the store kept %d tasks at %d done (%.0f tasks/s), want at most %d",
						soakKeep, l.StoredTasks, l.TasksDone, l.TasksPerSec, bound)
				}
			}
			grown, kept := tc.size(off[last])-tc.size(off[0]), tc.size(on[last])-tc.size(on[0])
			if grown <= 0 || kept*3 > grown {
				t.Errorf("%s grew %.2f MiB without retention and %.2f MiB with it, want it to grow, and under a third of that with it",
					tc.what, grown, kept)
			}
			t.Logf("%s: %.2f MiB without retention, %.2f MiB with it", tc.what, grown, kept)
		})
	}
}

// TestSoakFlags: -soak runs the soak, diamond by default, on each store;
// -retention both runs it without retention and then with.
func TestSoakFlags(t *testing.T) {
	var out, errOut strings.Builder
	err := run([]string{"-soak", "-store", "memory", "-tasks", "40", "-report-every", "20", "-retention", "both"}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v (%s)", err, errOut.String())
	}
	got := strings.Count(out.String(), `"stat":"soak","store":"memory","shape":"diamond"`)
	if got != 6 || strings.Index(out.String(), `"retention":false`) > strings.Index(out.String(), `"retention":true`) {
		t.Errorf("output:\n%s\nwant 3 lines without retention, then 3 with", out.String())
	}
	for _, args := range [][]string{
		{"-soak", "-retention", "sometimes"},
		{"-soak", "-shape", "diamond,chain"},
	} {
		if err := run(args, &out, &errOut); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
}
