package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/internal/record"
	sqlite3 "modernc.org/sqlite/lib"
)

// The statements of the write path, prepared once on the write connection.
const (
	taskByKeySQL  = `SELECT id FROM tasks WHERE idempotency_key = ?`
	insertTaskSQL = `INSERT INTO tasks (id, namespace, name, version, state, initiator,
		source_system, reason, tags, context, idempotency_key, created_at, updated_at, deadline)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertStepSQL = `INSERT INTO steps (task_id, name, position, state, attempts, result,
		error, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	updateStepSQL = `UPDATE steps SET state = ?, attempts = ?, result = ?, error = ?,
		next_attempt_at = ?, updated_at = ?
		WHERE task_id = ? AND name = ? AND state = ? AND attempts = ?`
	updateTaskSQL       = `UPDATE tasks SET state = ?, updated_at = ? WHERE id = ? AND state = ?`
	insertTransitionSQL = `INSERT INTO transitions (task_id, step, from_state, to_state,
		attempt, at, actor, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	stepStateSQL = `SELECT state, attempts FROM steps WHERE task_id = ? AND name = ?`
	taskStateSQL = `SELECT state FROM tasks WHERE id = ?`
)

// writeStmts runs the write operations; the writer calls them inside a
// transaction, one caller at a time.
type writeStmts struct {
	taskByKey, insertTask, insertStep, updateStep *sql.Stmt
	updateTask, insertTransition                  *sql.Stmt
	stepState, taskState                          *sql.Stmt
	all                                           []*sql.Stmt
}

func prepareWrites(ctx context.Context, conn *sql.Conn) (*writeStmts, error) {
	ws := &writeStmts{}
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&ws.taskByKey, taskByKeySQL}, {&ws.insertTask, insertTaskSQL},
		{&ws.insertStep, insertStepSQL}, {&ws.updateStep, updateStepSQL},
		{&ws.updateTask, updateTaskSQL}, {&ws.insertTransition, insertTransitionSQL},
		{&ws.stepState, stepStateSQL}, {&ws.taskState, taskStateSQL},
	} {
		st, err := conn.PrepareContext(ctx, p.query)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("prepare: %w", err), ws.close())
		}
		*p.stmt = st
		ws.all = append(ws.all, st)
	}
	return ws, nil
}

func (ws *writeStmts) close() error {
	var errs []error
	for _, st := range ws.all {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// createTask stores a prepared task and its steps, or returns the ID of the
// task holding its idempotency key.
func (ws *writeStmts) createTask(t store.Task, steps []store.Step) (id string, created bool, err error) {
	ctx := context.Background()
	if t.IdempotencyKey != "" {
		err := ws.taskByKey.QueryRowContext(ctx, t.IdempotencyKey).Scan(&id)
		if err == nil {
			return id, false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", false, err
		}
	}
	tags, err := encodeTags(t.Tags)
	if err != nil {
		return "", false, err
	}
	_, err = ws.insertTask.ExecContext(ctx, t.ID, t.Namespace, t.Name, t.Version, t.State,
		t.Initiator, t.SourceSystem, t.Reason, tags, blob(t.Context), nullString(t.IdempotencyKey),
		nanos(t.CreatedAt), nanos(t.UpdatedAt), nanos(t.Deadline))
	if isUnique(err) {
		return "", false, fmt.Errorf("task %q already exists: %w", t.ID, store.ErrConflict)
	}
	if err != nil {
		return "", false, err
	}
	for _, s := range steps {
		if err := ws.insertStepRow(ctx, s); err != nil {
			return "", false, fmt.Errorf("step %q: %w", s.Name, err)
		}
	}
	return t.ID, true, nil
}

func (ws *writeStmts) insertStepRow(ctx context.Context, s store.Step) error {
	failure, err := encodeFailure(s.Error)
	if err != nil {
		return err
	}
	_, err = ws.insertStep.ExecContext(ctx, s.TaskID, s.Name, s.Position, s.State, s.Attempts,
		blob(s.Result), failure, nanos(s.NextAttemptAt), nanos(s.UpdatedAt))
	return err
}

// apply applies prepared changes in order; the caller's savepoint undoes
// them all if one fails.
func (ws *writeStmts) apply(changes []store.Change) error {
	ctx := context.Background()
	for i, c := range changes {
		if err := ws.applyOne(ctx, i, c); err != nil {
			return err
		}
	}
	return nil
}

func (ws *writeStmts) applyOne(ctx context.Context, i int, c store.Change) error {
	res, err := ws.move(ctx, c)
	if err != nil {
		return fmt.Errorf("change %d: %w", i, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("change %d: %w", i, err)
	}
	if n == 0 {
		return ws.conflict(ctx, i, c)
	}
	tr := record.Transition(c)
	_, err = ws.insertTransition.ExecContext(ctx, tr.TaskID, tr.Step, tr.From, tr.To,
		tr.Attempt, nanos(tr.At), tr.By, tr.Reason)
	if err != nil {
		return fmt.Errorf("change %d: transition: %w", i, err)
	}
	return nil
}

// move runs the compare-and-swap update of change c.
func (ws *writeStmts) move(ctx context.Context, c store.Change) (sql.Result, error) {
	if c.Step == "" {
		return ws.updateTask.ExecContext(ctx, c.To, nanos(c.At), c.TaskID, c.From)
	}
	failure, err := encodeFailure(c.Error)
	if err != nil {
		return nil, err
	}
	return ws.updateStep.ExecContext(ctx, c.To, c.Attempt, blob(c.Result), failure,
		nanos(c.NextAttemptAt), nanos(c.At), c.TaskID, c.Step, c.From, c.FromAttempt)
}

// conflict explains why change i matched no row.
func (ws *writeStmts) conflict(ctx context.Context, i int, c store.Change) error {
	var state string
	if err := ws.taskState.QueryRowContext(ctx, c.TaskID).Scan(&state); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return record.Conflict(i, c, "unknown task")
		}
		return err
	}
	if c.Step == "" {
		return record.Conflict(i, c, "task is %q, want %q", state, c.From)
	}
	var attempts int
	if err := ws.stepState.QueryRowContext(ctx, c.TaskID, c.Step).Scan(&state, &attempts); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return record.Conflict(i, c, "unknown step")
		}
		return err
	}
	return record.Conflict(i, c, "step is %q attempt %d, want %q attempt %d",
		state, attempts, c.From, c.FromAttempt)
}

// isUnique reports a violated UNIQUE or PRIMARY KEY constraint.
func isUnique(err error) bool {
	var e interface{ Code() int }
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// CreateTask implements store.Store. An empty task.ID is replaced by a
// random UUID.
func (s *Store) CreateTask(ctx context.Context, task store.Task, steps []store.Step) (string, bool, error) {
	if s.closed.Load() {
		return "", false, s.fail("create task", store.ErrClosed)
	}
	t, st, err := record.PrepareTask(task, steps)
	if err != nil {
		return "", false, s.fail("create task", err)
	}
	var id string
	var created bool
	err = s.w.do(ctx, func(ws *writeStmts) error {
		var err error
		id, created, err = ws.createTask(t, st)
		return err
	})
	if err != nil {
		return "", false, s.fail("create task", err)
	}
	return id, created, nil
}

// Apply implements store.Store. A change with a zero At is stamped with the
// time of the call.
func (s *Store) Apply(ctx context.Context, changes []store.Change) error {
	if s.closed.Load() {
		return s.fail("apply", store.ErrClosed)
	}
	cs, err := record.PrepareChanges(changes, time.Now())
	if err != nil {
		return s.fail("apply", err)
	}
	if len(cs) == 0 {
		return ctx.Err()
	}
	if err := s.w.do(ctx, func(ws *writeStmts) error { return ws.apply(cs) }); err != nil {
		return s.fail("apply", err)
	}
	return nil
}
