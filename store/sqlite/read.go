package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/gotasker/tasker/store"
)

// readStmts are the fixed read queries, prepared on the read pool.
type readStmts struct {
	task, taskExists, steps, transitions *sql.Stmt
}

func prepareReads(ctx context.Context, db *sql.DB) (*readStmts, error) {
	rs := &readStmts{}
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&rs.task, `SELECT ` + taskColumns + ` FROM tasks WHERE id = ?`},
		{&rs.taskExists, `SELECT 1 FROM tasks WHERE id = ?`},
		{&rs.steps, `SELECT ` + stepColumns + ` FROM steps WHERE task_id = ? ORDER BY position, name`},
		{&rs.transitions, `SELECT ` + transitionColumns + ` FROM transitions WHERE task_id = ? ORDER BY seq`},
	} {
		st, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("prepare: %w", err), rs.close())
		}
		*p.stmt = st
	}
	return rs, nil
}

func (rs *readStmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{rs.task, rs.taskExists, rs.steps, rs.transitions} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// Task implements store.Store.
func (s *Store) Task(ctx context.Context, id string) (store.Task, error) {
	if s.closed.Load() {
		return store.Task{}, s.fail("task", store.ErrClosed)
	}
	t, err := scanTask(s.reads.task.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("%q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Task{}, s.fail("task", err)
	}
	return t, nil
}

// Steps implements store.Store.
func (s *Store) Steps(ctx context.Context, taskID string) ([]store.Step, error) {
	return readTaskRows(ctx, s, "steps", s.reads.steps, taskID, scanStep)
}

// Transitions implements store.Store.
func (s *Store) Transitions(ctx context.Context, taskID string) ([]store.Transition, error) {
	return readTaskRows(ctx, s, "transitions", s.reads.transitions, taskID, scanTransition)
}

// readTaskRows is the read of operation op that runs the prepared query st
// for the rows of task taskID and scans each with scan. No rows is an error
// wrapping store.ErrNotFound when the task does not exist.
func readTaskRows[T any](ctx context.Context, s *Store, op string, st *sql.Stmt, taskID string,
	scan func(scanner) (T, error)) ([]T, error) {
	if s.closed.Load() {
		return nil, s.fail(op, store.ErrClosed)
	}
	rows, err := st.QueryContext(ctx, taskID)
	out, err := collect(rows, err, scan)
	if err == nil && len(out) == 0 {
		err = s.exists(ctx, taskID)
	}
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// Snapshot implements store.Snapshotter: the task, its steps and its
// transitions from one read transaction, so they agree with each other.
func (s *Store) Snapshot(ctx context.Context, id string) (store.Snapshot, error) {
	if s.closed.Load() {
		return store.Snapshot{}, s.fail("snapshot", store.ErrClosed)
	}
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return store.Snapshot{}, s.fail("snapshot", err)
	}
	defer tx.Rollback() // read-only: nothing to commit
	var snap store.Snapshot
	snap.Task, err = scanTask(tx.StmtContext(ctx, s.reads.task).QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("%q: %w", id, store.ErrNotFound)
	}
	if err == nil {
		rows, qerr := tx.StmtContext(ctx, s.reads.steps).QueryContext(ctx, id)
		snap.Steps, err = collect(rows, qerr, scanStep)
	}
	if err == nil {
		rows, qerr := tx.StmtContext(ctx, s.reads.transitions).QueryContext(ctx, id)
		snap.Transitions, err = collect(rows, qerr, scanTransition)
	}
	if err != nil {
		return store.Snapshot{}, s.fail("snapshot", err)
	}
	return snap, nil
}

// exists returns an error wrapping store.ErrNotFound if there is no task id.
func (s *Store) exists(ctx context.Context, id string) error {
	var one int
	err := s.reads.taskExists.QueryRowContext(ctx, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("task %q: %w", id, store.ErrNotFound)
	}
	return err
}

// ListTasks implements store.Store. A Limit below 0 means no limit.
func (s *Store) ListTasks(ctx context.Context, f store.Filter) ([]store.Task, error) {
	q, args := listQuery(f)
	return readRows(ctx, s, "list tasks", q, args, scanTask)
}

// listQuery returns the query selecting the tasks f matches, in creation
// order, and its arguments.
func listQuery(f store.Filter) (string, []any) {
	var sel selection
	sel.equal("namespace", f.Namespace)
	sel.equal("name", f.Name)
	sel.equal("initiator", f.Initiator)
	sel.equal("source_system", f.SourceSystem)
	if len(f.States) > 0 {
		sel.where = append(sel.where, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, st := range f.States {
			sel.args = append(sel.args, st)
		}
	}
	for _, tag := range f.Tags {
		sel.where = append(sel.where, "EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE value = ?)")
		sel.args = append(sel.args, tag)
	}
	if f.After != "" { // an unknown ID compares seq with NULL: no row
		sel.where, sel.args = append(sel.where, "seq > (SELECT seq FROM tasks WHERE id = ?)"), append(sel.args, f.After)
	}
	return sel.query(`SELECT `+taskColumns+` FROM tasks`, f.Limit)
}

// DeadLetters implements store.Store. A Limit below 0 means no limit.
func (s *Store) DeadLetters(ctx context.Context, f store.DeadLetterFilter) ([]store.DeadLetter, error) {
	q, args := deadLetterQuery(f)
	return readRows(ctx, s, "dead letters", q, args, scanDeadLetter)
}

// deadLetterQuery returns the query selecting the dead-letter entries f
// matches, in insertion order, and its arguments.
func deadLetterQuery(f store.DeadLetterFilter) (string, []any) {
	var sel selection
	sel.equal("task_id", f.TaskID)
	status := "status"
	if f.TaskID != "" {
		status = "+status" // a task has few entries: use its index, not status's (see resolveDeadLettersSQL)
	}
	sel.equal(status, f.Status)
	return sel.query(`SELECT `+deadLetterColumns+` FROM dead_letters`, f.Limit)
}

// selection gathers the conditions of a filtered read and their arguments.
type selection struct {
	where []string
	args  []any
}

// equal adds the condition column = value, unless value is empty.
func (sel *selection) equal(column, value string) {
	if value != "" {
		sel.where, sel.args = append(sel.where, column+" = ?"), append(sel.args, value)
	}
}

// query returns selectFrom with the conditions, ordered by seq and, when
// limit is above 0, limited to that many rows; and its arguments.
func (sel *selection) query(selectFrom string, limit int) (string, []any) {
	q, args := selectFrom, sel.args
	if len(sel.where) > 0 {
		q += ` WHERE ` + strings.Join(sel.where, " AND ")
	}
	q += ` ORDER BY seq`
	if limit > 0 {
		q, args = q+` LIMIT ?`, append(args, limit)
	}
	return q, args
}

// readRows is the read of operation op that runs query q with args on the
// read pool and scans each row with scan.
func readRows[T any](ctx context.Context, s *Store, op, q string, args []any,
	scan func(scanner) (T, error)) ([]T, error) {
	if s.closed.Load() {
		return nil, s.fail(op, store.ErrClosed)
	}
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	out, err := collect(rows, err, scan)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// collect scans every row of a query with scan.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
