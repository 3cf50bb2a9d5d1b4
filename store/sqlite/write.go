package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/internal/record"
	sqlite3 "modernc.org/sqlite/lib"
)

// The statements of the write path, prepared once on the write connection.
const (
	taskByKeySQL  = `SELECT id FROM tasks WHERE namespace = ? AND name = ? AND idempotency_key = ?`
	insertTaskSQL = `INSERT INTO tasks (id, namespace, name, version, state, initiator,
		source_system, reason, tags, context, idempotency_key, created_at, updated_at, deadline, trace)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertStepSQL = `INSERT INTO steps (task_id, name, position, state, attempts, result,
		error, next_attempt_at, updated_at, checkpoint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	createStepSQL = `INSERT INTO steps (task_id, name, position, state, attempts, result,
		error, next_attempt_at, updated_at, checkpoint) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
		WHERE EXISTS (SELECT 1 FROM tasks WHERE id = ?) ON CONFLICT DO NOTHING`
	// A NULL checkpoint (none given) keeps the stored one.
	updateStepSQL = `UPDATE steps SET state = ?, attempts = ?, result = ?, error = ?,
		next_attempt_at = ?, updated_at = ?, checkpoint = coalesce(?, checkpoint)
		WHERE task_id = ? AND name = ? AND state = ? AND attempts = ?`
	updateTaskSQL = `UPDATE tasks SET state = ?, updated_at = ?, deadline = coalesce(?, deadline)
		WHERE id = ? AND state = ?`
	insertTransitionSQL = `INSERT INTO transitions (task_id, step, from_state, to_state,
		attempt, at, actor, reason, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertDeadLetterSQL = `INSERT INTO dead_letters (id, task_id, reason, message, status,
		created_at, resolved_at, resolved_by, resolution) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// The unary + keeps SQLite from choosing the index on status, which
	// holds every pending entry, over the one on task_id.
	resolveDeadLettersSQL = `UPDATE dead_letters SET status = ?, resolved_at = ?, resolved_by = ?,
		resolution = ? WHERE task_id = ? AND +status = ?`
	insertOutboxSQL = `INSERT INTO outbox (id, task_id, data, created_at) VALUES (?, ?, ?, ?)`
	deleteOutboxSQL = `DELETE FROM outbox WHERE id = ?`
	stepStateSQL    = `SELECT state, attempts FROM steps WHERE task_id = ? AND name = ?`
	taskStateSQL    = `SELECT state FROM tasks WHERE id = ?`
)

// stmt is a statement prepared on the write connection. The writer runs it
// through the driver directly rather than through database/sql, whose
// locking, argument conversion and allocations on every call cost the
// writer goroutine, the store's bottleneck, about a tenth of its time.
type stmt struct {
	exec  driver.StmtExecContext
	query driver.StmtQueryContext
	args  []driver.NamedValue // the arguments of the call in progress
	count *atomic.Int64       // counts the statement's runs; nil counts nothing
}

func prepare(conn driver.Conn, query string) (*stmt, error) {
	st, err := conn.(driver.ConnPrepareContext).PrepareContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	exec, okExec := st.(driver.StmtExecContext)
	q, okQuery := st.(driver.StmtQueryContext)
	if !okExec || !okQuery {
		return nil, errors.Join(fmt.Errorf("driver statement %T runs no context calls", st), st.Close())
	}
	return &stmt{exec: exec, query: q}, nil
}

// run runs the statement and returns the number of rows it changed. Its
// arguments are driver.Values: int64, not int.
func (s *stmt) run(args ...driver.Value) (int64, error) {
	if s.count != nil {
		s.count.Add(1)
	}
	res, err := s.exec.ExecContext(context.Background(), s.bind(args))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryRow runs the statement and reads its first row into dest, reporting
// whether there was one.
func (s *stmt) queryRow(dest []driver.Value, args ...driver.Value) (found bool, err error) {
	if s.count != nil {
		s.count.Add(1)
	}
	rows, err := s.query.QueryContext(context.Background(), s.bind(args))
	if err != nil {
		return false, err
	}
	defer func() { err = errors.Join(err, rows.Close()) }()
	switch err := rows.Next(dest); {
	case errors.Is(err, io.EOF):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

func (s *stmt) bind(args []driver.Value) []driver.NamedValue {
	s.args = s.args[:0]
	for i, v := range args {
		s.args = append(s.args, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	return s.args
}

func (s *stmt) close() error {
	s.args = nil
	return s.exec.(driver.Stmt).Close()
}

// writeStmts runs the write operations; the writer calls them inside a
// transaction, one caller at a time. It also holds the writer's
// transaction statements, prepared like the others rather than parsed
// again on every use.
//
// The transitions that apply records are not inserted at once: their rows
// wait in pending until flush inserts them all with as few multi-row
// INSERTs as their number allows. The writer flushes once per transaction,
// after the requests that share it, so that a transaction of many requests
// writes its audit trail in one statement or a few; see writer.commit.
type writeStmts struct {
	conn driver.Conn // the write connection, for tests

	taskByKey, insertTask, createStep, updateStep *stmt
	updateTask                                    *stmt
	insertDeadLetter, resolveDeadLetters          *stmt
	insertOutbox, deleteOutbox                    *stmt
	stepState, taskState                          *stmt

	begin, commit, rollback          *stmt
	savepoint, release, rollbackToSP *stmt
	checkpoint                       *stmt

	insertSteps, insertTransitions *rowsInsert

	// pending holds the values of the transitions not yet inserted,
	// transitionWidth per row, in the order they were recorded.
	pending []driver.Value

	all []*stmt
}

// transitionWidth is the number of values of a row of insertTransitionSQL,
// stepWidth of insertStepSQL.
const (
	transitionWidth = 9
	stepWidth       = 10
)

// prepareWrites prepares the write statements on conn; count, when not
// nil, counts every statement they run.
func prepareWrites(conn driver.Conn, count *atomic.Int64) (*writeStmts, error) {
	ws := &writeStmts{conn: conn}
	var err error
	if ws.insertSteps, err = newRowsInsert(conn, insertStepSQL, stepWidth, count); err != nil {
		return nil, err
	}
	if ws.insertTransitions, err = newRowsInsert(conn, insertTransitionSQL, transitionWidth, count); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		stmt  **stmt
		query string
	}{
		{&ws.taskByKey, taskByKeySQL}, {&ws.insertTask, insertTaskSQL},
		{&ws.createStep, createStepSQL}, {&ws.updateStep, updateStepSQL},
		{&ws.updateTask, updateTaskSQL},
		{&ws.insertDeadLetter, insertDeadLetterSQL}, {&ws.resolveDeadLetters, resolveDeadLettersSQL},
		{&ws.insertOutbox, insertOutboxSQL}, {&ws.deleteOutbox, deleteOutboxSQL},
		{&ws.stepState, stepStateSQL}, {&ws.taskState, taskStateSQL},
		{&ws.begin, "BEGIN IMMEDIATE"}, {&ws.commit, "COMMIT"}, {&ws.rollback, "ROLLBACK"},
		{&ws.savepoint, "SAVEPOINT request"}, {&ws.release, "RELEASE request"},
		{&ws.rollbackToSP, "ROLLBACK TO request"}, {&ws.checkpoint, "PRAGMA wal_checkpoint(PASSIVE)"},
	} {
		st, err := prepare(conn, p.query)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("prepare: %w", err), ws.close())
		}
		st.count = count
		*p.stmt = st
		ws.all = append(ws.all, st)
	}
	return ws, nil
}

func (ws *writeStmts) close() error {
	errs := []error{ws.insertSteps.close(), ws.insertTransitions.close()}
	for _, st := range ws.all {
		errs = append(errs, st.close())
	}
	return errors.Join(errs...)
}

// flush inserts the pending transitions and forgets them. On an error the
// transaction may hold some of them: the caller rolls it back, or the
// request's savepoint.
func (ws *writeStmts) flush() error {
	if len(ws.pending) == 0 {
		return nil
	}
	err := ws.insertTransitions.run(ws.pending)
	ws.discard()
	if err != nil {
		return fmt.Errorf("transitions: %w", err)
	}
	return nil
}

// discard forgets the pending transitions, which a rollback has undone.
func (ws *writeStmts) discard() {
	clear(ws.pending) // for the collector: the values hold the callers' strings
	ws.pending = ws.pending[:0]
}

// createTask stores a prepared task and its steps, or returns the ID of the
// task of the same namespace and name holding its idempotency key.
func (ws *writeStmts) createTask(t store.Task, steps []store.Step) (id string, created bool, err error) {
	if t.IdempotencyKey != "" {
		var row [1]driver.Value
		found, err := ws.taskByKey.queryRow(row[:], t.Namespace, t.Name, t.IdempotencyKey)
		if err != nil {
			return "", false, err
		}
		if found {
			id, _ := row[0].(string)
			return id, false, nil
		}
	}
	tags, err := encodeTags(t.Tags)
	if err != nil {
		return "", false, err
	}
	trace, err := encodeTrace(t.Trace)
	if err != nil {
		return "", false, err
	}
	_, err = ws.insertTask.run(t.ID, t.Namespace, t.Name, t.Version, t.State,
		t.Initiator, t.SourceSystem, t.Reason, tags, blob(t.Context), nullString(t.IdempotencyKey),
		nanos(t.CreatedAt), nanos(t.UpdatedAt), nanos(t.Deadline), trace)
	if isUnique(err) {
		return "", false, fmt.Errorf("task %q already exists: %w", t.ID, store.ErrConflict)
	}
	if err != nil {
		return "", false, err
	}
	if err := ws.insertStepRows(steps); err != nil {
		return "", false, err
	}
	return t.ID, true, nil
}

// insertStepRows inserts the rows of steps, with multi-row INSERTs.
func (ws *writeStmts) insertStepRows(steps []store.Step) error {
	vals := make([]driver.Value, 0, stepWidth*len(steps))
	for _, s := range steps {
		failure, err := encodeFailure(s.Error)
		if err != nil {
			return fmt.Errorf("step %q: %w", s.Name, err)
		}
		vals = append(vals, s.TaskID, s.Name, int64(s.Position), s.State, int64(s.Attempts),
			blob(s.Result), failure, nanos(s.NextAttemptAt), nanos(s.UpdatedAt), blob(s.Checkpoint))
	}
	if err := ws.insertSteps.run(vals); err != nil {
		return fmt.Errorf("steps: %w", err)
	}
	return nil
}

// apply applies prepared changes in order, leaving their transitions
// pending (see flush). If one fails, the writer undoes the changes before
// it.
func (ws *writeStmts) apply(changes []store.Change) error {
	for i, c := range changes {
		if err := ws.applyOne(i, c); err != nil {
			return err
		}
	}
	return nil
}

func (ws *writeStmts) applyOne(i int, c store.Change) error {
	failure, err := encodeFailure(c.Error)
	if err != nil {
		return fmt.Errorf("change %d: %w", i, err)
	}
	n, err := ws.move(c, failure)
	if err != nil {
		return fmt.Errorf("change %d: %w", i, err)
	}
	if n == 0 {
		return ws.conflict(i, c)
	}
	tr := record.Transition(c)
	if tr.Error == nil {
		failure = nil
	}
	ws.pending = append(ws.pending, tr.TaskID, tr.Step, tr.From, tr.To,
		int64(tr.Attempt), nanos(tr.At), tr.By, tr.Reason, failure)
	if err := ws.deadLetters(i, c); err != nil {
		return err
	}
	return ws.outbox(i, c)
}

// outbox adds the outbox entries of change i, prepared, in its transaction.
func (ws *writeStmts) outbox(i int, c store.Change) error {
	for _, e := range c.Outbox {
		_, err := ws.insertOutbox.run(e.ID, e.TaskID, blob(e.Data), nanos(e.CreatedAt))
		if isUnique(err) {
			return record.Conflict(i, c, "outbox ID %q is taken", e.ID)
		}
		if err != nil {
			return fmt.Errorf("change %d: outbox: %w", i, err)
		}
	}
	return nil
}

// ackOutbox deletes the outbox entries with ids.
func (ws *writeStmts) ackOutbox(ids []string) error {
	for _, id := range ids {
		if _, err := ws.deleteOutbox.run(id); err != nil {
			return err
		}
	}
	return nil
}

// deadLetters carries out the dead-letter operations of change i, a task
// change whose compare-and-swap has succeeded, in its transaction: it
// resolves the task's pending entries, then adds c's own.
func (ws *writeStmts) deadLetters(i int, c store.Change) error {
	if c.ResolveDeadLetters {
		_, err := ws.resolveDeadLetters.run(store.DeadLetterResolved, nanos(c.At), c.By, c.Reason,
			c.TaskID, store.DeadLetterPending)
		if err != nil {
			return fmt.Errorf("change %d: resolve dead letters: %w", i, err)
		}
	}
	d := c.DeadLetter
	if d == nil {
		return nil
	}
	_, err := ws.insertDeadLetter.run(d.ID, d.TaskID, d.Reason, d.Message, d.Status,
		nanos(d.CreatedAt), nanos(d.ResolvedAt), d.ResolvedBy, d.Resolution)
	if isUnique(err) {
		return record.Conflict(i, c, "dead-letter ID %q is taken", d.ID)
	}
	if err != nil {
		return fmt.Errorf("change %d: dead letter: %w", i, err)
	}
	return nil
}

// move runs the compare-and-swap update of change c, whose Error encodes as
// failure, and returns the number of rows it changed: 0 or 1.
func (ws *writeStmts) move(c store.Change, failure any) (int64, error) {
	if c.Step == "" {
		return ws.updateTask.run(c.To, nanos(c.At), nanos(c.Deadline), c.TaskID, c.From)
	}
	if c.From == "" {
		return ws.createStep.run(c.TaskID, c.Step, int64(c.Position), c.To, int64(c.Attempt),
			blob(c.Result), failure, nanos(c.NextAttemptAt), nanos(c.At), blob(c.Checkpoint), c.TaskID)
	}
	return ws.updateStep.run(c.To, int64(c.Attempt), blob(c.Result), failure,
		nanos(c.NextAttemptAt), nanos(c.At), blob(c.Checkpoint),
		c.TaskID, c.Step, c.From, int64(c.FromAttempt))
}

// conflict explains why change i matched no row.
func (ws *writeStmts) conflict(i int, c store.Change) error {
	var row [2]driver.Value
	found, err := ws.taskState.queryRow(row[:1], c.TaskID)
	if err != nil {
		return err
	}
	if !found {
		return record.Conflict(i, c, "unknown task")
	}
	if c.Step == "" {
		return record.Conflict(i, c, "task is %q, want %q", row[0], c.From)
	}
	if found, err = ws.stepState.queryRow(row[:], c.TaskID, c.Step); err != nil {
		return err
	}
	if !found {
		return record.Conflict(i, c, "unknown step")
	}
	return record.Conflict(i, c, "step is %q attempt %d, want %q attempt %d",
		row[0], row[1], c.From, c.FromAttempt)
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
// version 7 UUID.
func (s *Store) CreateTask(ctx context.Context, task store.Task, steps []store.Step) (string, bool, error) {
	if s.closed.Load() {
		return "", false, s.fail("create task", store.ErrClosed)
	}
	if err := s.writable(); err != nil {
		return "", false, s.fail("create task", err)
	}
	t, st, err := record.PrepareTask(task, steps)
	if err != nil {
		return "", false, s.fail("create task", err)
	}
	var id string
	var created bool
	err = s.w.doAlongside(ctx, func(ws *writeStmts) error {
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
	if err := s.writable(); err != nil {
		return s.fail("apply", err)
	}
	cs, err := record.PrepareChanges(changes)
	if err != nil {
		return s.fail("apply", err)
	}
	if len(cs) == 0 {
		return ctx.Err()
	}
	if err := s.w.doAlongside(ctx, func(ws *writeStmts) error { return ws.apply(cs) }); err != nil {
		return s.fail("apply", err)
	}
	return nil
}
