package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotasker/tasker/store"
)

func userVersion(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMigrateIsIdempotent(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tasker.db")
	for i := range 2 {
		s, err := Open(path, nil)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if v := userVersion(t, path); v != len(ms) {
			t.Errorf("after Open #%d user_version = %d, want %d", i+1, v, len(ms))
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasker.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(context.Background(), "PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(path, nil); err == nil || !strings.Contains(err.Error(), "newer") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open of a newer schema: %v, want an error", err)
	}
}

func TestConnectionSettings(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		opts *Options
		sync int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{{nil, 1}, {&Options{Synchronous: "full"}, 2}} {
		s, err := Open(filepath.Join(t.TempDir(), "tasker.db"), tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		for pragma, want := range map[string]string{
			"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000",
			"synchronous": fmt.Sprint(tt.sync),
		} {
			got, err := writerPragma(ctx, s, pragma)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%+v: write connection PRAGMA %s = %s, want %s", tt.opts, pragma, got, want)
			}
		}
		if _, err := s.rdb.ExecContext(ctx, "DELETE FROM tasks"); err == nil {
			t.Error("a read connection could write")
		}
		s.Close()
	}
}

// writerPragma returns the value of a PRAGMA on the writer's connection.
func writerPragma(ctx context.Context, s *Store, pragma string) (string, error) {
	var got string
	err := s.w.do(ctx, func(ws *writeStmts) error {
		st, err := prepare(ws.conn, "PRAGMA "+pragma)
		if err != nil {
			return err
		}
		defer st.close()
		var row [1]driver.Value
		if _, err := st.queryRow(row[:]); err != nil {
			return err
		}
		got = fmt.Sprint(row[0])
		return nil
	})
	return got, err
}

// openConn returns a write connection to a store's file, migrated to the
// embedded schema and holding one task.
func openConn(t *testing.T) (*sql.Conn, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tasker.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateTask(context.Background(), store.Task{ID: "t1"}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", dsn(path, Options{Synchronous: "NORMAL"}, false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	return conn, ms
}

func TestMigrateAppliesNewMigrations(t *testing.T) {
	conn, ms := openConn(t)
	ctx := context.Background()
	next := append(ms, "CREATE TABLE extra (x INTEGER); INSERT INTO extra SELECT count(*) FROM tasks;")
	if err := migrate(ctx, conn, next); err != nil {
		t.Fatal(err)
	}
	var v, x int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != len(next) {
		t.Errorf("user_version = %d, %v; want %d", v, err, len(next))
	}
	if err := conn.QueryRowContext(ctx, "SELECT x FROM extra").Scan(&x); err != nil || x != 1 {
		t.Errorf("the new migration saw %d tasks, %v; want 1", x, err)
	}
}

func TestMigrateFailureAppliesNothing(t *testing.T) {
	conn, ms := openConn(t)
	ctx := context.Background()
	next := append(ms, "CREATE TABLE extra (x INTEGER)", "CREATE TABLE broken (")
	if err := migrate(ctx, conn, next); err == nil {
		t.Fatal("migrate with a broken migration succeeded")
	}
	var v, n int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil || v != len(ms) {
		t.Errorf("user_version = %d, %v; want %d", v, err, len(ms))
	}
	err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name = 'extra'").Scan(&n)
	if err != nil || n != 0 {
		t.Errorf("table extra exists (%d, %v) after a failed migration", n, err)
	}
}

// TestGroupCommitIsolatesFailures queues valid and conflicting Applies
// behind a busy writer, so they share transactions, and checks that each
// gets its own outcome.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	const n = 16
	s := openWithSteps(t, n)
	var wg sync.WaitGroup
	release := blockWriter(s, &wg)
	commits := s.w.commits.Load()
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			// Odd steps expect attempt 5: a conflict.
			c := store.Change{TaskID: "t1", Step: fmt.Sprint("s", i), From: "pending",
				FromAttempt: 5 * (i % 2), To: "in_progress", Attempt: 1}
			errs[i] = s.Apply(ctx, []store.Change{c})
		})
	}
	waitQueued(t, s, n)
	close(release)
	wg.Wait()

	checkEvenSucceededOddConflicted(t, errs)
	got, err := s.Steps(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range got {
		if want := map[bool]string{true: "in_progress", false: "pending"}[i%2 == 0]; st.State != want {
			t.Errorf("step %s is %q, want %q", st.Name, st.State, want)
		}
	}
	if c := s.w.commits.Load() - commits; c >= n+1 {
		t.Errorf("%d commits for %d requests: no group commit", c, n+1)
	}
}

// TestGroupCommitUndoesPartialRequest queues, behind a busy writer, Applies
// that succeed and Applies whose first change applies and second conflicts,
// so that a batch fails part way through a request, and checks that each
// failed request leaves nothing behind while the others commit.
func TestGroupCommitUndoesPartialRequest(t *testing.T) {
	ctx := context.Background()
	const n = 16
	s := openWithSteps(t, n)
	var wg sync.WaitGroup
	release := blockWriter(s, &wg)
	commits := s.w.commits.Load()
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			step := fmt.Sprint("s", i)
			claim := store.Change{TaskID: "t1", Step: step, From: "pending", To: "in_progress", Attempt: 1}
			second := store.Change{TaskID: "t1", Step: step, From: "in_progress", FromAttempt: 1,
				To: "completed", Attempt: 1, Result: json.RawMessage(`{}`)}
			if i%2 == 1 {
				second = claim // the step is no longer pending: a conflict
			}
			errs[i] = s.Apply(ctx, []store.Change{claim, second})
		})
	}
	waitQueued(t, s, n)
	close(release)
	wg.Wait()

	checkEvenSucceededOddConflicted(t, errs)
	got, err := s.Steps(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range got {
		want := map[bool]string{true: "completed", false: "pending"}[i%2 == 0]
		if st.State != want || (want == "pending") != (st.Attempts == 0) {
			t.Errorf("step %s is %q attempt %d, want %q", st.Name, st.State, st.Attempts, want)
		}
	}
	trs, err := s.Transitions(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if len(trs) != n {
		t.Fatalf("%d transitions, want %d: %+v", len(trs), n, trs)
	}
	for k := 0; k < len(trs); k += 2 {
		claim, done := trs[k], trs[k+1]
		if claim.Step != done.Step || claim.To != "in_progress" || done.To != "completed" {
			t.Errorf("transitions %d and %d = %+v, %+v; want a claim and a completion of one step", k, k+1, claim, done)
		}
		var i int
		fmt.Sscanf(claim.Step, "s%d", &i)
		if i%2 == 1 {
			t.Errorf("transition of failed Apply %d: %+v", i, claim)
		}
	}
	if c := s.w.commits.Load() - commits; c >= n+1 {
		t.Errorf("%d commits for %d requests: no group commit", c, n+1)
	}
}

// openWithSteps opens a store, closed when the test ends, holding task t1
// with pending steps s0 … s(n-1).
func openWithSteps(t *testing.T, n int) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "tasker.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	steps := make([]store.Step, n)
	for i := range steps {
		steps[i] = store.Step{Name: fmt.Sprint("s", i), Position: i, State: "pending"}
	}
	if _, _, err := s.CreateTask(context.Background(), store.Task{ID: "t1"}, steps); err != nil {
		t.Fatal(err)
	}
	return s
}

// blockWriter occupies the writer, in a goroutine of wg, until the returned
// channel is closed, so that requests queued meanwhile share transactions.
func blockWriter(s *Store, wg *sync.WaitGroup) chan struct{} {
	entered, release := make(chan struct{}), make(chan struct{})
	wg.Go(func() {
		s.w.do(context.Background(), func(*writeStmts) error { close(entered); <-release; return nil })
	})
	<-entered
	return release
}

// checkEvenSucceededOddConflicted checks that the even requests succeeded
// and the odd ones failed with ErrConflict.
func checkEvenSucceededOddConflicted(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if i%2 == 0 && err != nil {
			t.Errorf("valid Apply %d: %v", i, err)
		}
		if i%2 == 1 && !errors.Is(err, store.ErrConflict) {
			t.Errorf("conflicting Apply %d: %v, want ErrConflict", i, err)
		}
	}
}

// waitQueued waits until n requests wait for the blocked writer, so that
// they will share its next transactions.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.w.waiting.Load() < int64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests queued after 10s", s.w.waiting.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWriteTakenIsAnswered: once the writer has taken a request, the
// caller's context ending does not cut the answer short: the caller learns
// that the write happened, so an error always means nothing was written.
func TestWriteTakenIsAnswered(t *testing.T) {
	s := openWithSteps(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.w.do(ctx, func(ws *writeStmts) error {
			close(entered)
			<-release
			return ws.apply([]store.Change{{TaskID: "t1", Step: "s0", From: "pending", To: "in_progress", Attempt: 1,
				At: time.Unix(1, 0)}})
		})
	}()
	<-entered
	cancel() // the caller gives up while its write commits
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("do = %v, want the committed write's nil", err)
	}
	steps, err := s.Steps(context.Background(), "t1")
	if err != nil || steps[0].State != "in_progress" {
		t.Errorf("steps = %+v, %v; want s0 in_progress", steps, err)
	}
}

// TestCommitStats: the counters count every committed request.
func TestCommitStats(t *testing.T) {
	s := openWithSteps(t, 2)
	before, reqBefore := s.CommitStats()
	for i := range 2 {
		name := fmt.Sprint("s", i)
		if err := s.Apply(context.Background(), []store.Change{{TaskID: "t1", Step: name, From: "pending", To: "in_progress", Attempt: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	commits, requests := s.CommitStats()
	if requests-reqBefore != 2 || commits-before < 1 || commits-before > 2 {
		t.Errorf("after 2 applies: %d commits, %d requests more; want 1–2 and 2", commits-before, requests-reqBefore)
	}
}
