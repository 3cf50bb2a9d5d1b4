package sqlite

import (
	"context"
	"database/sql"

	"github.com/gotasker/tasker/store"
)

var _ store.Outboxer = (*Store)(nil)

// PendingOutbox implements store.Outboxer. An unknown after matches
// nothing: the subquery is NULL, and so is every comparison with it.
func (s *Store) PendingOutbox(ctx context.Context, after string, limit int) ([]store.OutboxEntry, error) {
	var sel selection
	if after != "" {
		sel.where, sel.args = append(sel.where, "seq > (SELECT seq FROM outbox WHERE id = ?)"), append(sel.args, after)
	}
	q, args := sel.query(`SELECT id, task_id, data, created_at FROM outbox`, limit)
	return readRows(ctx, s, "pending outbox", q, args, scanOutbox)
}

func scanOutbox(sc scanner) (store.OutboxEntry, error) {
	var (
		e       store.OutboxEntry
		created sql.NullInt64
	)
	err := sc.Scan(&e.ID, &e.TaskID, &e.Data, &created)
	e.CreatedAt = fromNanos(created)
	return e, err
}

// AckOutbox implements store.Outboxer.
func (s *Store) AckOutbox(ctx context.Context, ids []string) error {
	if s.closed.Load() {
		return s.fail("ack outbox", store.ErrClosed)
	}
	if err := s.writable(); err != nil {
		return s.fail("ack outbox", err)
	}
	if len(ids) == 0 {
		return ctx.Err()
	}
	if err := s.w.doAlongside(ctx, func(ws *writeStmts) error { return ws.ackOutbox(ids) }); err != nil {
		return s.fail("ack outbox", err)
	}
	return nil
}
