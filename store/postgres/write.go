package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/internal/record"
)

// The SQLSTATEs tasker_refuse raises, and the unique constraints whose
// violation is a conflict.
const (
	codeConflict     = "TK001"
	codeLeaseLost    = "TK002"
	uniqueViolation  = "23505"
	tasksPkey        = "tasks_pkey"
	outboxIDKey      = "outbox_id"
	deadLetterIDKey  = "dead_letters_id"
	idempotencyIndex = "tasks_idempotency_key"
)

// write runs fn on a connection of the pool: ctx bounds the wait for the
// connection, and fn gets ctx without its cancellation, so that a write
// that has started runs to its end.
func (s *Store) write(ctx context.Context, fn func(context.Context, *pgxpool.Conn) error) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return fn(context.WithoutCancel(ctx), c)
}

// CreateTask implements store.Store. An empty task.ID is replaced by a
// version 7 UUID; a Task.Owner given is ignored. The task is free to
// acquire, and its creation notifies the engines waiting on Wake.
func (s *Store) CreateTask(ctx context.Context, task store.Task, steps []store.Step) (string, bool, error) {
	id, created, _, err := s.create(ctx, "create task", task, steps, "", 0)
	return id, created, err
}

// create stores a task, leased to owner for ttl unless owner is "", and
// returns its ID, whether it created it and the lease it granted.
func (s *Store) create(ctx context.Context, op string, task store.Task, steps []store.Step, owner string,
	ttl time.Duration) (string, bool, store.Lease, error) {
	q, err := s.ready(ctx)
	if err != nil {
		return "", false, store.Lease{}, fail(op, err)
	}
	t, st, err := record.PrepareTask(task, steps)
	if err != nil {
		return "", false, store.Lease{}, fail(op, err)
	}
	args, err := createArgs(q, t, st, owner, ttl)
	if err != nil {
		return "", false, store.Lease{}, fail(op, err)
	}
	var id string
	var created bool
	var expires pgtype.Timestamptz
	err = s.write(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		var notified int64
		err := c.QueryRow(ctx, q.create, args...).Scan(&id, &expires, &notified)
		created = err == nil
		if errors.Is(err, pgx.ErrNoRows) || isUnique(err, idempotencyIndex) {
			// The key is taken, perhaps by a transaction that committed
			// after this statement's snapshot: look again.
			err = c.QueryRow(ctx, q.taskByKey, t.Namespace, t.Name, t.IdempotencyKey).Scan(&id)
		}
		if isUnique(err, tasksPkey) {
			return fmt.Errorf("task %q already exists: %w", t.ID, store.ErrConflict)
		}
		return err
	})
	if err != nil {
		return "", false, store.Lease{}, fail(op, err)
	}
	if !created || owner == "" {
		return id, created, store.Lease{}, nil
	}
	return id, true, store.Lease{TaskID: id, Owner: owner, Token: 1, Expires: expires.Time.UTC()}, nil
}

// createArgs returns the arguments of createSQL for a prepared task and
// its steps.
func createArgs(q *queries, t store.Task, steps []store.Step, owner string, ttl time.Duration) ([]any, error) {
	trace, err := encodeTrace(t.Trace)
	if err != nil {
		return nil, err
	}
	n := len(steps)
	var (
		names, states          = make([]string, n), make([]string, n)
		positions, attempts    = make([]int64, n), make([]int64, n)
		results, checkpoints   = make([][]byte, n), make([][]byte, n)
		failures               = make([]pgtype.Text, n)
		nextAttempts, updateds = make([]pgtype.Int8, n), make([]pgtype.Int8, n)
	)
	for i, st := range steps {
		if failures[i], err = encodeFailure(st.Error); err != nil {
			return nil, fmt.Errorf("step %q: %w", st.Name, err)
		}
		names[i], states[i] = st.Name, st.State
		positions[i], attempts[i] = int64(st.Position), int64(st.Attempts)
		results[i], checkpoints[i] = nonEmpty(st.Result), nonEmpty(st.Checkpoint)
		nextAttempts[i], updateds[i] = nanos(st.NextAttemptAt), nanos(st.UpdatedAt)
	}
	return []any{t.ID, t.Namespace, t.Name, t.Version, t.State, t.Initiator, t.SourceSystem, t.Reason,
		tagsParam(t.Tags), nonEmpty(t.Context), nullText(t.IdempotencyKey), nanos(t.CreatedAt),
		nanos(t.UpdatedAt), nanos(t.Deadline), trace, nullText(owner), ttl.Microseconds(),
		names, positions, states, attempts, results, failures, nextAttempts, updateds, checkpoints,
		q.channel}, nil
}

// isUnique reports a violation of the unique constraint or index named.
func isUnique(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == uniqueViolation && pgErr.ConstraintName == constraint
}

// Apply implements store.Store. A change with a zero At is stamped with the
// time of the call (the caller's clock, as for every time the engine
// gives). The batch is one transaction in one round trip.
func (s *Store) Apply(ctx context.Context, changes []store.Change) error {
	q, err := s.ready(ctx)
	if err != nil {
		return fail("apply", err)
	}
	cs, err := record.PrepareChanges(changes)
	if err != nil {
		return fail("apply", err)
	}
	if len(cs) == 0 {
		return nil
	}
	b, locks, err := applyBatch(q, cs)
	if err != nil {
		return fail("apply", err)
	}
	err = s.write(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		br := c.SendBatch(ctx, b)
		for i := range b.Len() {
			if _, err := br.Exec(); err != nil {
				_ = br.Close() // the batch's first error again
				return explain(i-locks, cs, err)
			}
		}
		return br.Close()
	})
	if err != nil {
		return fail("apply", err)
	}
	return nil
}

// applyBatch returns the pipeline of prepared changes cs and how many
// statements precede the changes' own: the fencing lock, when a change has
// a Lease.
func applyBatch(q *queries, cs []store.Change) (*pgx.Batch, int, error) {
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(cs)+1)}
	locks := 0
	if ids, exclusive := fencedTasks(cs); len(ids) > 0 {
		lock := q.lockShared
		if exclusive {
			lock = q.lockUpdate
		}
		b.Queue(lock, ids)
		locks = 1
	}
	for i, c := range cs {
		if err := queueChange(b, q, c); err != nil {
			return nil, 0, fmt.Errorf("change %d: %w", i, err)
		}
	}
	return b, locks, nil
}

// fencedTasks returns the tasks of the changes of cs that carry a Lease,
// and whether a change of cs moves one of those tasks itself.
func fencedTasks(cs []store.Change) (ids []string, exclusive bool) {
	for _, c := range cs {
		if c.Lease != 0 && !slices.Contains(ids, c.TaskID) {
			ids = append(ids, c.TaskID)
		}
	}
	for _, c := range cs {
		exclusive = exclusive || (c.Step == "" && slices.Contains(ids, c.TaskID))
	}
	return ids, exclusive
}

// queueChange queues the statement of one prepared change.
func queueChange(b *pgx.Batch, q *queries, c store.Change) error {
	ids, data := outboxArrays(c.Outbox)
	if c.Step == "" {
		var dlID, dlReason, dlMessage pgtype.Text
		if d := c.DeadLetter; d != nil {
			dlID, dlReason, dlMessage = text(d.ID), text(d.Reason), text(d.Message)
		}
		b.Queue(q.updateTask, c.TaskID, c.From, c.To, nanos(c.At), nanos(c.Deadline), c.Lease, c.By, c.Reason,
			c.ResolveDeadLetters, dlID, dlReason, dlMessage, ids, data)
		return nil
	}
	failure, err := encodeFailure(c.Error)
	if err != nil {
		return err
	}
	if c.From == "" {
		b.Queue(q.createStep, c.TaskID, c.Step, int64(c.Position), c.To, int64(c.Attempt), nonEmpty(c.Result),
			failure, nanos(c.NextAttemptAt), nanos(c.At), nonEmpty(c.Checkpoint), c.Lease, c.By, c.Reason, ids, data)
		return nil
	}
	b.Queue(q.updateStep, c.TaskID, c.Step, c.From, c.To, int64(c.Attempt), nonEmpty(c.Result), failure,
		nanos(c.NextAttemptAt), nanos(c.At), nonEmpty(c.Checkpoint), int64(c.FromAttempt), c.Lease, c.By, c.Reason,
		ids, data)
	return nil
}

// text is s as a text parameter that is never NULL.
func text(s string) pgtype.Text { return pgtype.Text{String: s, Valid: true} }

// outboxArrays returns the IDs and data of entries as array parameters,
// NULL when there are none.
func outboxArrays(entries []store.OutboxEntry) ([]string, [][]byte) {
	if len(entries) == 0 {
		return nil, nil
	}
	ids, data := make([]string, len(entries)), make([][]byte, len(entries))
	for i, e := range entries {
		ids[i], data[i] = e.ID, nonEmpty(e.Data)
	}
	return ids, data
}

// explain returns the error of statement i of an Apply's changes cs (i < 0
// for the fencing lock): a refusal becomes the conflict or lost lease it
// reports, a taken dead-letter or outbox ID a conflict.
func explain(i int, cs []store.Change, err error) error {
	var pgErr *pgconn.PgError
	if i < 0 || !errors.As(err, &pgErr) {
		return err
	}
	c := cs[i]
	switch {
	case pgErr.Code == codeConflict:
		return record.Conflict(i, c, "%s", pgErr.Message)
	case pgErr.Code == codeLeaseLost:
		token, _ := strconv.ParseInt(pgErr.Message, 10, 64)
		return record.LeaseLost(i, c, token)
	case isUnique(err, outboxIDKey):
		return record.Conflict(i, c, "outbox ID is taken: %s", pgErr.Detail)
	case isUnique(err, deadLetterIDKey):
		return record.Conflict(i, c, "dead-letter ID %q is taken", c.DeadLetter.ID)
	}
	return fmt.Errorf("change %d: %w", i, err)
}
