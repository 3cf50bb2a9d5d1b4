package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/gotasker/tasker/store"
)

// Task implements store.Store.
func (s *Store) Task(ctx context.Context, id string) (store.Task, error) {
	q, err := s.ready(ctx)
	if err != nil {
		return store.Task{}, fail("task", err)
	}
	t, err := scanTask(s.pool.QueryRow(ctx, q.task, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = fmt.Errorf("%q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Task{}, fail("task", err)
	}
	return t, nil
}

// Steps implements store.Store.
func (s *Store) Steps(ctx context.Context, taskID string) ([]store.Step, error) {
	return readTaskRows(ctx, s, "steps", func(q *queries) string { return q.steps }, taskID, scanStep)
}

// Transitions implements store.Store.
func (s *Store) Transitions(ctx context.Context, taskID string) ([]store.Transition, error) {
	return readTaskRows(ctx, s, "transitions", func(q *queries) string { return q.transitions }, taskID, scanTransition)
}

// readTaskRows is the read of operation op that runs the query sql picks
// for the rows of task taskID and scans each with scan. No rows is an error
// wrapping store.ErrNotFound when the task does not exist.
func readTaskRows[T any](ctx context.Context, s *Store, op string, sql func(*queries) string, taskID string,
	scan func(pgx.Row) (T, error)) ([]T, error) {
	q, err := s.ready(ctx)
	if err != nil {
		return nil, fail(op, err)
	}
	out, err := query(ctx, s, sql(q), []any{taskID}, scan)
	if err == nil && len(out) == 0 {
		var exists bool
		if err = s.pool.QueryRow(ctx, q.taskExists, taskID).Scan(&exists); err == nil && !exists {
			err = fmt.Errorf("task %q: %w", taskID, store.ErrNotFound)
		}
	}
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// query runs sql with args on the pool and scans each row with scan.
func query[T any](ctx context.Context, s *Store, sql string, args []any, scan func(pgx.Row) (T, error)) ([]T, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scan)
}

// Snapshot implements store.Snapshotter: the task, its steps and its
// transitions from one REPEATABLE READ, read-only transaction, sent with
// its queries in one round trip.
func (s *Store) Snapshot(ctx context.Context, id string) (store.Snapshot, error) {
	q, err := s.ready(ctx)
	if err != nil {
		return store.Snapshot{}, fail("snapshot", err)
	}
	// The transaction is begun and committed in the batch itself, not with
	// Batch.BeginTx, whose transaction would hold the connection until a
	// Commit of its own. A batch that fails leaves its transaction open,
	// and the pool closes the connection rather than take it back.
	b := &pgx.Batch{}
	b.Queue(snapshotBeginSQL)
	b.Queue(q.task, id)
	b.Queue(q.steps, id)
	b.Queue(q.transitions, id)
	b.Queue("COMMIT")
	br := s.pool.SendBatch(ctx, b)
	snap, err := readSnapshot(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, pgx.ErrNoRows) {
		err = fmt.Errorf("%q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Snapshot{}, fail("snapshot", err)
	}
	return snap, nil
}

const snapshotBeginSQL = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"

// readSnapshot reads the results of Snapshot's batch.
func readSnapshot(br pgx.BatchResults) (snap store.Snapshot, err error) {
	if _, err = br.Exec(); err != nil { // BEGIN
		return snap, err
	}
	if snap.Task, err = scanTask(br.QueryRow()); err != nil {
		return snap, err
	}
	if snap.Steps, err = collectBatch(br, scanStep); err != nil {
		return snap, err
	}
	if snap.Transitions, err = collectBatch(br, scanTransition); err != nil {
		return snap, err
	}
	_, err = br.Exec() // COMMIT
	return snap, err
}

func collectBatch[T any](br pgx.BatchResults, scan func(pgx.Row) (T, error)) ([]T, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	return collect(rows, scan)
}

// ListTasks implements store.Store. A Limit below 0 means no limit.
func (s *Store) ListTasks(ctx context.Context, f store.Filter) ([]store.Task, error) {
	q, err := s.ready(ctx)
	if err != nil {
		return nil, fail("list tasks", err)
	}
	var sel selection
	sel.equal("namespace", f.Namespace)
	sel.equal("name", f.Name)
	sel.equal("initiator", f.Initiator)
	sel.equal("source_system", f.SourceSystem)
	if len(f.States) > 0 {
		sel.add("state = ANY(", f.States, "::text[])")
	}
	if len(f.Tags) > 0 {
		sel.add("tags @> ", f.Tags, "::text[]")
	}
	if f.After != "" { // an unknown ID compares seq with NULL: no row
		sel.add("seq > (SELECT seq FROM "+q.prefix+"tasks WHERE id = ", f.After, "::text)")
	}
	sql, args := sel.query(`SELECT `+taskColumns+` FROM `+q.prefix+`tasks`, f.Limit)
	out, err := query(ctx, s, sql, args, scanTask)
	if err != nil {
		return nil, fail("list tasks", err)
	}
	return out, nil
}

// DeadLetters implements store.Store. A Limit below 0 means no limit.
func (s *Store) DeadLetters(ctx context.Context, f store.DeadLetterFilter) ([]store.DeadLetter, error) {
	q, err := s.ready(ctx)
	if err != nil {
		return nil, fail("dead letters", err)
	}
	var sel selection
	sel.equal("task_id", f.TaskID)
	sel.equal("status", f.Status)
	sql, args := sel.query(`SELECT `+deadLetterColumns+` FROM `+q.prefix+`dead_letters`, f.Limit)
	out, err := query(ctx, s, sql, args, scanDeadLetter)
	if err != nil {
		return nil, fail("dead letters", err)
	}
	return out, nil
}

// selection gathers the conditions of a filtered read and their arguments.
type selection struct {
	where []string
	args  []any
}

// add adds the condition before, arg's placeholder, after.
func (sel *selection) add(before string, arg any, after string) {
	sel.args = append(sel.args, arg)
	sel.where = append(sel.where, before+"$"+strconv.Itoa(len(sel.args))+after)
}

// equal adds the condition column = value, unless value is empty.
func (sel *selection) equal(column, value string) {
	if value != "" {
		sel.add(column+" = ", value, "::text")
	}
}

// query returns selectFrom with the conditions, ordered by seq and, when
// limit is above 0, limited to that many rows; and its arguments.
func (sel *selection) query(selectFrom string, limit int) (string, []any) {
	q := selectFrom
	if len(sel.where) > 0 {
		q += ` WHERE ` + strings.Join(sel.where, " AND ")
	}
	q += ` ORDER BY seq`
	if limit > 0 {
		sel.args = append(sel.args, int64(limit))
		q += ` LIMIT $` + strconv.Itoa(len(sel.args))
	}
	return q, sel.args
}
