package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotasker/tasker/store"
)

// createVersion1 creates a database file at schema version 1, the first
// release's, holding task t1 (shop/order, key order-42) with steps a and b
// and one transition, as that release wrote them.
func createVersion1(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", dsn(path, Options{Synchronous: "NORMAL"}, false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, conn, ms[:1]); err != nil {
		t.Fatalf("migrate to version 1: %v", err)
	}
	for _, q := range []string{
		`INSERT INTO tasks (id, namespace, name, version, state, initiator, source_system, reason,
			idempotency_key, created_at) VALUES ('t1', 'shop', 'order', '1.0.0', 'running', '', '', '', 'order-42', 7)`,
		`INSERT INTO steps (task_id, name, position, state, attempts, result)
			VALUES ('t1', 'a', 0, 'completed', 1, CAST('{"ok":true}' AS BLOB)), ('t1', 'b', 1, 'pending', 0, NULL)`,
		`INSERT INTO transitions (task_id, step, from_state, to_state, attempt, at, actor, reason)
			VALUES ('t1', 'a', 'in_progress', 'completed', 1, 9, '', '')`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestMigrateFromVersion1KeepsDataAndScopesKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tasker.db")
	createVersion1(t, path)
	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open of a version 1 database: %v", err)
	}
	defer s.Close()
	ms, _ := migrations()
	if v := userVersion(t, path); v != len(ms) {
		t.Errorf("user_version after Open = %d, want %d", v, len(ms))
	}
	// Rebuilding the tasks table must not have cascaded to its children.
	if task, err := s.Task(ctx, "t1"); err != nil || task.IdempotencyKey != "order-42" || task.State != "running" {
		t.Errorf("Task(t1) = %+v, %v; want the version 1 task", task, err)
	}
	if steps, err := s.Steps(ctx, "t1"); err != nil || len(steps) != 2 || string(steps[0].Result) != `{"ok":true}` {
		t.Errorf("Steps(t1) = %+v, %v; want a (with its result) and b", steps, err)
	}
	if trs, err := s.Transitions(ctx, "t1"); err != nil || len(trs) != 1 || trs[0].To != "completed" {
		t.Errorf("Transitions(t1) = %+v, %v; want the one transition", trs, err)
	}
	retry := store.Task{ID: "t2", Namespace: "shop", Name: "order", Version: "2.0.0", IdempotencyKey: "order-42"}
	if id, created, err := s.CreateTask(ctx, retry, nil); err != nil || created || id != "t1" {
		t.Errorf("CreateTask shop/order with key order-42 = %q, %v, %v; want t1, false, nil", id, created, err)
	}
	other := store.Task{ID: "t3", Namespace: "shop", Name: "refund", IdempotencyKey: "order-42"}
	if id, created, err := s.CreateTask(ctx, other, nil); err != nil || !created || id != "t3" {
		t.Errorf("CreateTask shop/refund with key order-42 = %q, %v, %v; want t3, true, nil", id, created, err)
	}
	// Creation order continues after the copied rows.
	if tasks, err := s.ListTasks(ctx, store.Filter{}); err != nil || len(tasks) != 2 || tasks[0].ID != "t1" || tasks[1].ID != "t3" {
		t.Errorf("ListTasks = %+v, %v; want t1 then t3", tasks, err)
	}
	checkMigratedCheckpoints(t, s)
}

// checkMigratedCheckpoints checks that the steps of the version 1 task t1
// came through migration 0004 without a checkpoint, and that b takes one.
func checkMigratedCheckpoints(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	claim := store.Change{TaskID: "t1", Step: "b", From: "pending", To: "in_progress", Attempt: 1,
		Checkpoint: json.RawMessage(`{"page": 2}`)}
	if err := s.Apply(ctx, []store.Change{claim}); err != nil {
		t.Fatalf("Apply of a checkpoint to a migrated step: %v", err)
	}
	steps, err := s.Steps(ctx, "t1")
	if err != nil || len(steps) != 2 || steps[0].Checkpoint != nil || string(steps[1].Checkpoint) != `{"page": 2}` {
		t.Errorf("Steps(t1) = %+v, %v; want a without a checkpoint, b with the one applied", steps, err)
	}
}

func TestKeyLookupUsesIndex(t *testing.T) {
	s := openEmpty(t)
	if got := queryPlan(t, s, taskByKeySQL, "shop", "order", "k"); !strings.Contains(got, "USING INDEX tasks_idempotency_key") {
		t.Errorf("query plan of the key lookup = %q, want it to use tasks_idempotency_key", got)
	}
}

func TestDeadLetterQueriesUseIndexes(t *testing.T) {
	s := openEmpty(t)
	byTask, _ := deadLetterQuery(store.DeadLetterFilter{TaskID: "t1"})
	byStatus, _ := deadLetterQuery(store.DeadLetterFilter{Status: store.DeadLetterPending})
	byBoth, _ := deadLetterQuery(store.DeadLetterFilter{TaskID: "t1", Status: store.DeadLetterPending})
	for _, tt := range []struct{ what, query, index string }{
		{"the resolve", resolveDeadLettersSQL, "dead_letters_task"},
		{"a read by task", byTask, "dead_letters_task"},
		{"a read by task and status", byBoth, "dead_letters_task"},
		{"a read by status", byStatus, "dead_letters_status"},
	} {
		args := make([]any, strings.Count(tt.query, "?"))
		for i := range args {
			args[i] = ""
		}
		if got := queryPlan(t, s, tt.query, args...); !strings.Contains(got, "USING INDEX "+tt.index) ||
			strings.Contains(got, "TEMP B-TREE") {
			t.Errorf("query plan of %s = %q, want it to use %s without sorting", tt.what, got, tt.index)
		}
	}
}

// openEmpty opens a new store, closed when the test ends.
func openEmpty(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "tasker.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// queryPlan returns the details of SQLite's plan for q, joined by "; ".
func queryPlan(t *testing.T, s *Store, q string, args ...any) string {
	t.Helper()
	rows, err := s.rdb.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}
