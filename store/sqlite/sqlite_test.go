package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/sqlite"
	"github.com/gotasker/tasker/store/storetest"
)

// childEnv, when set, makes the test binary a child process that writes to
// the database file it names and exits without closing the store.
const childEnv = "TASKER_SQLITE_TEST_CHILD_DB"

// holdEnv, when set, makes the test binary a child process that opens the
// database file it names, prints holdReady and holds the store open until
// its standard input closes or it is killed.
const holdEnv = "TASKER_SQLITE_TEST_HOLD_DB"

const holdReady = "holding"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(runChild(path))
	}
	if path := os.Getenv(holdEnv); path != "" {
		os.Exit(runHolder(path))
	}
	os.Exit(m.Run())
}

// runHolder opens the store at path, says so on stdout and blocks until
// stdin reaches its end: the parent kills it, or the parent's exit closes
// the pipe, so the child never outlives the test.
func runHolder(path string) int {
	s, err := sqlite.Open(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer s.Close()
	fmt.Println(holdReady)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

func open(t *testing.T, path string) store.Store {
	t.Helper()
	s, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "tasker.db"))
	})
}

func TestDurable(t *testing.T) {
	storetest.RunDurable(t, open)
}

func TestDurableSynchronousFull(t *testing.T) {
	storetest.RunDurable(t, func(t *testing.T, path string) store.Store {
		s, err := sqlite.Open(path, &sqlite.Options{Synchronous: "full"})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// runChild creates a task, claims and completes its step, prints the task
// ID and exits at once: no Close, no deferred functions.
func runChild(path string) int {
	ctx := context.Background()
	s, err := sqlite.Open(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	task := store.Task{Namespace: "child", Name: "crash", State: "running", IdempotencyKey: "child-1"}
	id, _, err := s.CreateTask(ctx, task, []store.Step{{Name: "a", State: "pending"}})
	if err == nil {
		err = s.Apply(ctx, []store.Change{
			{TaskID: id, Step: "a", From: "pending", To: "in_progress", Attempt: 1},
			{TaskID: id, Step: "a", From: "in_progress", FromAttempt: 1, To: "completed", Attempt: 1,
				Result: json.RawMessage(`{"from":"child"}`)},
		})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println(id)
	return 0
}

func TestWriteByExitedProcessIsReadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasker.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// Under -race, a process sleeps a second at exit unless told not to.
	cmd.Env = append(os.Environ(), childEnv+"="+path, "GORACE=atexit_sleep_ms=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, stderr(err))
	}
	id := strings.TrimSpace(string(out))

	s := open(t, path)
	defer s.Close()
	ctx := context.Background()
	task, err := s.Task(ctx, id)
	if err != nil || task.IdempotencyKey != "child-1" {
		t.Fatalf("Task(%q) = %+v, %v; want the child's task", id, task, err)
	}
	steps, err := s.Steps(ctx, id)
	if err != nil || len(steps) != 1 || steps[0].State != "completed" ||
		string(steps[0].Result) != `{"from":"child"}` {
		t.Fatalf("Steps(%q) = %+v, %v; want step a completed with the child's result", id, steps, err)
	}
	if trs, err := s.Transitions(ctx, id); err != nil || len(trs) != 2 {
		t.Fatalf("Transitions(%q) = %+v, %v; want 2", id, trs, err)
	}
}

func stderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := open(t, filepath.Join(t.TempDir(), "tasker.db"))
	ctx := context.Background()
	id, _, err := s.CreateTask(ctx, store.Task{State: "pending"}, []store.Step{{Name: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListTasks(ctx, store.Filter{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Steps(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		path string
		opts *sqlite.Options
	}{
		{filepath.Join(dir, "a.db"), &sqlite.Options{Synchronous: "OFF"}},
		{filepath.Join(dir, "b.db"), &sqlite.Options{Synchronous: "sometimes"}},
		{"", nil},
		{":memory:", nil},
	} {
		if s, err := sqlite.Open(tt.path, tt.opts); err == nil {
			s.Close()
			t.Errorf("Open(%q, %+v) succeeded", tt.path, tt.opts)
		}
	}
}

func TestOpenPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd ?name#%20.db")
	s := open(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %q: %v", path, err)
	}
}
