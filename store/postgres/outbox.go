package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gotasker/tasker/store"
)

// PendingOutbox implements store.Outboxer. An unknown after matches
// nothing: the subquery is NULL, and so is every comparison with it.
func (s *Store) PendingOutbox(ctx context.Context, after string, limit int) ([]store.OutboxEntry, error) {
	q, err := s.ready(ctx)
	if err != nil {
		return nil, fail("pending outbox", err)
	}
	var sel selection
	if after != "" {
		sel.add("seq > (SELECT seq FROM "+q.prefix+"outbox WHERE id = ", after, "::text)")
	}
	sql, args := sel.query(`SELECT id, task_id, data, created_at FROM `+q.prefix+`outbox`, limit)
	out, err := query(ctx, s, sql, args, scanOutbox)
	if err != nil {
		return nil, fail("pending outbox", err)
	}
	return out, nil
}

// AckOutbox implements store.Outboxer.
func (s *Store) AckOutbox(ctx context.Context, ids []string) error {
	q, err := s.ready(ctx)
	if err != nil {
		return fail("ack outbox", err)
	}
	if len(ids) == 0 {
		return nil
	}
	err = s.write(ctx, func(ctx context.Context, c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, q.ackOutbox, ids)
		return err
	})
	if err != nil {
		return fail("ack outbox", err)
	}
	return nil
}
