package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/gotasker/tasker/store"
)

var _ store.Purger = (*Store)(nil)

// purgeBatch is how many tasks one transaction of PurgeTasks deletes at
// most, so that a large purge never holds many rows locked for long.
const purgeBatch = 100

// purgeSQL deletes, in one statement, up to $4 of the tasks a PurgeFilter
// selects, least recently updated first; the steps, transitions and
// dead-letter entries go with them (ON DELETE CASCADE). $1 states, $2 the
// UpdatedBefore bound in Unix nanoseconds (NULL: no age limit), $3
// KeepNewest. Rows another transaction holds are skipped, not waited for.
const purgeSQL = `WITH keep AS (
	SELECT id FROM {s}.tasks WHERE state = ANY($1::text[]) ORDER BY seq DESC LIMIT $3::bigint
), c AS (
	SELECT t.id FROM {s}.tasks t
	WHERE t.state = ANY($1::text[])
		AND ($2::bigint IS NULL OR (t.updated_at IS NOT NULL AND t.updated_at < $2::bigint))
		AND t.id NOT IN (SELECT id FROM keep)
		AND NOT EXISTS (SELECT FROM {s}.outbox o WHERE o.task_id = t.id)
	ORDER BY t.updated_at NULLS LAST, t.seq
	LIMIT $4::bigint
	FOR UPDATE OF t SKIP LOCKED
)
DELETE FROM {s}.tasks t USING c WHERE t.id = c.id`

// PurgeTasks implements store.Purger, in transactions of at most 100
// tasks each.
func (s *Store) PurgeTasks(ctx context.Context, f store.PurgeFilter) (int, error) {
	if len(f.States) == 0 {
		return 0, fail("purge tasks", errors.New("no states given"))
	}
	q, err := s.ready(ctx)
	if err != nil {
		return 0, fail("purge tasks", err)
	}
	before := nanos(f.UpdatedBefore) // NULL, the zero time: no age limit
	keep := max(f.KeepNewest, 0)
	n := 0
	for f.Limit <= 0 || n < f.Limit {
		if err := ctx.Err(); err != nil {
			return n, fail("purge tasks", err)
		}
		batch := purgeBatch
		if f.Limit > 0 {
			batch = min(batch, f.Limit-n)
		}
		tag, err := s.pool.Exec(ctx, q.purge, f.States, before, keep, batch)
		if err != nil {
			return n, fail("purge tasks", fmt.Errorf("after %d: %w", n, err))
		}
		n += int(tag.RowsAffected())
		if tag.RowsAffected() < int64(batch) {
			break
		}
	}
	return n, nil
}
