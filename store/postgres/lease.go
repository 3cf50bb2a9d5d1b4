package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gotasker/tasker/store"
)

// CreateLeased implements store.Leaser: CreateTask, and when it creates the
// task, leased to owner with token 1 until ttl from the server's now, in
// the same statement. It sends no notification: the task is its creator's.
func (s *Store) CreateLeased(ctx context.Context, task store.Task, steps []store.Step, owner string,
	ttl time.Duration) (string, bool, store.Lease, error) {
	if owner == "" {
		return "", false, store.Lease{}, fail("create leased task", errNoOwner)
	}
	return s.create(ctx, "create leased task", task, steps, owner, ttl)
}

// AcquireTasks implements store.Leaser with one statement: an UPDATE of the
// oldest free tasks chosen FOR UPDATE SKIP LOCKED, so concurrent callers,
// in this process or others, take different tasks, and a task whose
// fenced changes are being written is skipped until they commit. Limit and
// expiry are by the server's clock; a limit of 0 or less, or no states,
// leases nothing.
func (s *Store) AcquireTasks(ctx context.Context, owner string, states []string, limit int,
	ttl time.Duration) ([]store.Lease, error) {
	if owner == "" {
		return nil, fail("acquire tasks", errNoOwner)
	}
	q, err := s.ready(ctx)
	if err != nil {
		return nil, fail("acquire tasks", err)
	}
	if limit <= 0 || len(states) == 0 {
		return nil, nil
	}
	return s.leases(ctx, "acquire tasks", owner, q.acquire, owner, states, int64(limit), ttl.Microseconds())
}

// RenewLeases implements store.Leaser.
func (s *Store) RenewLeases(ctx context.Context, owner string, states []string, ttl time.Duration) ([]store.Lease, error) {
	if owner == "" {
		return nil, fail("renew leases", errNoOwner)
	}
	q, err := s.ready(ctx)
	if err != nil {
		return nil, fail("renew leases", err)
	}
	return s.leases(ctx, "renew leases", owner, q.renew, owner, states, ttl.Microseconds())
}

// leases runs the write sql, which returns the leases of owner it granted
// or extended, and returns them.
func (s *Store) leases(ctx context.Context, op, owner, sql string, args ...any) ([]store.Lease, error) {
	var out []store.Lease
	err := s.write(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = collect(rows, func(row pgx.Row) (store.Lease, error) {
			l := store.Lease{Owner: owner}
			err := row.Scan(&l.TaskID, &l.Token, &l.Expires)
			l.Expires = l.Expires.UTC()
			return l, err
		})
		return err
	})
	if err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// ReleaseTasks implements store.Leaser. When it releases a task it
// notifies the engines waiting on Wake, in its transaction.
func (s *Store) ReleaseTasks(ctx context.Context, leases []store.Lease) error {
	q, err := s.ready(ctx)
	if err != nil {
		return fail("release tasks", err)
	}
	if len(leases) == 0 {
		return nil
	}
	ids, tokens := make([]string, len(leases)), make([]int64, len(leases))
	for i, l := range leases {
		ids[i], tokens[i] = l.TaskID, l.Token
	}
	err = s.write(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, q.release, ids, tokens, q.channel)
		return err
	})
	if err != nil {
		return fail("release tasks", err)
	}
	return nil
}
