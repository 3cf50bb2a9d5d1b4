package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/gotasker/tasker/store/postgres/pgtest"
)

// TestMain lets the test binary be a child of -procs, as the command is:
// TestProcs runs the command's run in this process, which re-executes this
// binary for its engine processes.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestProcs runs the closed loop on PostgreSQL in two engine processes and
// in this one, and checks the lines: every task completed, the steps add
// up, the tasks in flight stayed within -inflight across the processes,
// the children's CPU time was counted, and each run's schema was dropped.
func TestProcs(t *testing.T) {
	pgtest.URL(t)
	before := benchSchemas(t)
	for _, c := range []struct {
		procs, tasks, inflight int
	}{{2, 20, 4}, {0, 6, 2}} {
		args := []string{"-store", "postgres", "-shape", "diamond", "-body", "decode", "-tasks", strconv.Itoa(c.tasks), "-inflight", strconv.Itoa(c.inflight)}
		if c.procs > 0 {
			args = append(args, "-procs", strconv.Itoa(c.procs))
		}
		lines := runLines(t, args...)
		if len(lines) != 1 {
			t.Fatalf("%q: got %d lines, want 1", args, len(lines))
		}
		r := lines[0]
		checkClosed(t, r, c.inflight)
		if r.Store != "postgres" || r.Procs != c.procs || r.Tasks != c.tasks || r.Complete != c.tasks || r.Steps != 5*c.tasks {
			t.Errorf("%q: store %s, procs %d, tasks %d, complete %d, steps %d; want postgres, %d, %d, %d, %d",
				args, r.Store, r.Procs, r.Tasks, r.Complete, r.Steps, c.procs, c.tasks, c.tasks, 5*c.tasks)
		}
	}
	if after := benchSchemas(t); after != before {
		t.Errorf("%d taskerbench schemas on the server after the runs, %d before: a run left its schema", after, before)
	}
}

// TestProcsBadFlags checks that -procs out of range or in conflict is an
// error that prints nothing.
func TestProcsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-procs", "-1"},
		{"-procs", "2", "-inflight", "4"},                                           // the memory store
		{"-procs", "2", "-store", "postgres"},                                       // not the closed loop
		{"-procs", "3", "-store", "postgres", "-inflight", "2"},                     // a process with nothing in flight
		{"-procs", "2", "-store", "postgres,sqlite", "-inflight", "4"},              // a store of one process
		{"-procs", "2", "-store", "postgres", "-inflight", "4", "-cpuprofile", "x"}, // the engines are not in this process
	} {
		var out bytes.Buffer
		if err := run(args, &out, io.Discard); err == nil || out.Len() > 0 {
			t.Errorf("%q: err %v, output %q; want an error and no output", args, err, out.String())
		}
	}
}

// benchSchemas counts the schemas of taskerbench runs on the server.
func benchSchemas(t *testing.T) int {
	t.Helper()
	pool := pgtest.Pool(t)
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1", schemaPrefix+"%").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
