package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/gotasker/tasker/store"
	sqlite3 "modernc.org/sqlite/lib"
)

var _ store.Purger = (*Store)(nil)

// purgeChunk bounds how many tasks one transaction of PurgeTasks deletes,
// each with its steps and audit trail, so that the writer's other requests
// wait for it no longer than for a few ordinary batches: 64 tasks of five
// steps take about 9 ms (median) on a busy 2-core machine, 100 took 17.
const purgeChunk = 64

// The file's free pages: PurgeTasks gives back to the file system, through
// incremental vacuum, the free pages beyond a slack of vacuumSlackMin pages
// or an eighth of the file, whichever is more, vacuumStep pages per
// transaction. The slack is what the tasks created until the next purge
// reuse; without it the file would shrink and grow again at every purge.
const (
	vacuumStep     = 512  // 2 MiB of 4 KiB pages
	vacuumSlackMin = 2048 // 8 MiB
)

// PurgeTasks implements store.Purger. It first looks, on the read pool,
// whether any task is to go, so that a purge with nothing to delete costs
// the writer nothing. It then deletes in transactions of at most purgeChunk
// tasks, each a request to the writer like an Apply; and, when it deleted
// any, it gives the free pages beyond a slack back to the file system
// (PRAGMA incremental_vacuum), vacuumStep pages per transaction. The file
// itself shrinks at the next WAL checkpoint.
func (s *Store) PurgeTasks(ctx context.Context, f store.PurgeFilter) (int, error) {
	if s.closed.Load() {
		return 0, s.fail("purge tasks", store.ErrClosed)
	}
	if err := s.writable(); err != nil {
		return 0, s.fail("purge tasks", err)
	}
	if len(f.States) == 0 {
		return 0, s.fail("purge tasks", errors.New("no States given"))
	}
	f.States = slices.Compact(slices.Sorted(slices.Values(f.States)))
	switch found, err := s.anyToPurge(ctx, f); {
	case err != nil:
		return 0, s.fail("purge tasks", err)
	case !found:
		return 0, nil
	}
	total := 0
	for {
		want := purgeChunk
		if f.Limit > 0 {
			want = min(want, f.Limit-total)
		}
		var n int
		err := s.w.do(ctx, func(ws *writeStmts) error {
			var err error
			n, err = purgeTx(ws.conn, f, want)
			return err
		})
		if err != nil {
			return total, s.fail("purge tasks", err)
		}
		total += n
		if n < want || total == f.Limit {
			break
		}
	}
	if err := s.vacuum(ctx, vacuumSlackMin); err != nil {
		return total, s.fail("purge tasks: vacuum", err)
	}
	return total, nil
}

// anyToPurge reports, from the read pool, whether f selects a task.
func (s *Store) anyToPurge(ctx context.Context, f store.PurgeFilter) (bool, error) {
	boundary := int64(-1)
	if f.KeepNewest > 0 {
		q, args := boundaryQuery(f)
		err := s.rdb.QueryRowContext(ctx, q, args...).Scan(&boundary)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	q, args := victimsQuery(f, boundary, 1)
	var seq int64
	err := s.rdb.QueryRowContext(ctx, q, args...).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// purgeTx deletes, in the writer's transaction on conn, at most limit of
// the tasks f selects, the least recently updated first, and returns how
// many it deleted. Their rows in the other tables go by the foreign keys'
// ON DELETE CASCADE.
func purgeTx(conn driver.Conn, f store.PurgeFilter, limit int) (int, error) {
	boundary := int64(-1) // the oldest task kept by f.KeepNewest; -1: none
	if f.KeepNewest > 0 {
		q, args := boundaryQuery(f)
		seqs, err := queryInts(conn, q, args)
		if err != nil || len(seqs) == 0 {
			return 0, err // none: fewer tasks than KeepNewest
		}
		boundary = seqs[0]
	}
	q, args := victimsQuery(f, boundary, limit)
	victims, err := queryInts(conn, q, args)
	if err != nil || len(victims) == 0 {
		return 0, err
	}
	del, err := prepare(conn, `DELETE FROM tasks WHERE seq = ?`)
	if err != nil {
		return 0, err
	}
	defer del.close()
	deleted := 0
	for _, seq := range victims {
		n, err := del.run(seq)
		if err != nil {
			return 0, fmt.Errorf("delete task %d: %w", seq, err)
		}
		deleted += int(n)
	}
	return deleted, nil
}

// boundaryQuery returns the query of the seq of the oldest of the
// f.KeepNewest newest tasks in f.States (no row when fewer tasks are in
// f.States), and its arguments. Each state reads at most KeepNewest entries
// of its index.
func boundaryQuery(f store.PurgeFilter) (string, []any) {
	var q strings.Builder
	var args []any
	q.WriteString(`SELECT seq FROM (`)
	for i, state := range f.States {
		if i > 0 {
			q.WriteString(` UNION ALL `)
		}
		q.WriteString(`SELECT * FROM (SELECT seq FROM tasks WHERE state = ? ORDER BY seq DESC LIMIT ?)`)
		args = append(args, state, int64(f.KeepNewest))
	}
	q.WriteString(`) ORDER BY seq DESC LIMIT 1 OFFSET ?`)
	return q.String(), append(args, int64(f.KeepNewest-1))
}

// victimsQuery returns the query of the seqs of at most limit tasks f
// selects, older than boundary unless it is -1, the least recently updated
// first; and its arguments. Each state reads at most limit entries of the
// index on (state, updated_at), plus those it skips for a pending outbox
// entry or the boundary.
func victimsQuery(f store.PurgeFilter, boundary int64, limit int) (string, []any) {
	var cond strings.Builder
	var condArgs []any
	if !f.UpdatedBefore.IsZero() {
		cond.WriteString(` AND updated_at < ?`)
		condArgs = append(condArgs, cutoff(f.UpdatedBefore))
	}
	if boundary >= 0 {
		cond.WriteString(` AND seq < ?`)
		condArgs = append(condArgs, boundary)
	}
	cond.WriteString(` AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.task_id = tasks.id)`)
	var q strings.Builder
	var args []any
	q.WriteString(`SELECT seq FROM (`)
	for i, state := range f.States {
		if i > 0 {
			q.WriteString(` UNION ALL `)
		}
		q.WriteString(`SELECT * FROM (SELECT seq, updated_at FROM tasks WHERE state = ?` + cond.String() +
			` ORDER BY updated_at, seq LIMIT ?)`)
		args = append(append(append(args, state), condArgs...), int64(limit))
	}
	q.WriteString(`) ORDER BY updated_at, seq LIMIT ?`)
	return q.String(), append(args, int64(limit))
}

// queryInts runs query q with args, each a string or an int64, on conn
// and returns the first column of every row, an integer.
func queryInts(conn driver.Conn, q string, args []any) (out []int64, err error) {
	st, err := prepare(conn, q)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, st.close()) }()
	values := make([]driver.Value, len(args))
	for i, a := range args {
		values[i] = a
	}
	rows, err := st.query.QueryContext(context.Background(), st.bind(values))
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, rows.Close()) }()
	dest := make([]driver.Value, len(rows.Columns()))
	for {
		switch err := rows.Next(dest); {
		case errors.Is(err, io.EOF):
			return out, nil
		case err != nil:
			return nil, err
		}
		n, ok := dest[0].(int64)
		if !ok {
			return nil, fmt.Errorf("query %q: got %T, want an integer", q, dest[0])
		}
		out = append(out, n)
	}
}

// vacuum gives the free pages beyond the slack, slackMin pages or an
// eighth of the file, whichever is more, back to the file system,
// vacuumStep pages per writer transaction, until none is beyond it.
func (s *Store) vacuum(ctx context.Context, slackMin int64) error {
	for {
		var more bool
		err := s.w.do(ctx, func(ws *writeStmts) error {
			var err error
			more, err = vacuumStepTx(ws.conn, slackMin)
			return err
		})
		if err != nil || !more {
			return err
		}
	}
}

// vacuumStepTx frees up to vacuumStep of the free pages beyond the slack,
// in the writer's transaction on conn, and reports whether it freed any. A
// database without incremental auto-vacuum (its VACUUM at Open found the
// disk full) frees none.
func vacuumStepTx(conn driver.Conn, slackMin int64) (bool, error) {
	var v [3]int64
	for i, q := range []string{`PRAGMA auto_vacuum`, `PRAGMA freelist_count`, `PRAGMA page_count`} {
		row, err := queryInts(conn, q, nil)
		if err != nil {
			return false, err
		}
		if len(row) != 1 {
			return false, fmt.Errorf("%s: got %d rows, want 1", q, len(row))
		}
		v[i] = row[0]
	}
	mode, free, pages := v[0], v[1], v[2]
	excess := free - max(slackMin, pages/8)
	if mode != autoVacuumIncremental || excess <= 0 {
		return false, nil
	}
	step := min(excess, vacuumStep)
	// PRAGMA takes no parameters; step is an integer we computed.
	if err := execOnce(conn, fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, step)); err != nil {
		return false, err
	}
	return true, nil // the file shrank, and so did its slack: look again
}

// enableAutoVacuum makes the database on conn an incremental auto-vacuum
// one, so that PurgeTasks can shrink the file. A database created before
// this version has none, and setting it takes a VACUUM, which rewrites the
// whole file (it needs as much free disk space, and time in proportion to
// its size), once: outside any transaction, before the store serves
// anything. A VACUUM the disk has no room for is left for the next Open:
// the store works the same, its file only does not shrink. The WAL the
// VACUUM filled is truncated after it.
func enableAutoVacuum(ctx context.Context, conn *sql.Conn) error {
	var mode int
	if err := conn.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return err
	}
	if mode == autoVacuumIncremental {
		return nil
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "VACUUM"); err != nil {
		if isFull(err) {
			return nil
		}
		return fmt.Errorf("vacuum to enable auto-vacuum: %w", err)
	}
	_, err := conn.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

// autoVacuumIncremental is PRAGMA auto_vacuum's value for INCREMENTAL.
const autoVacuumIncremental = 2

// isFull reports SQLITE_FULL: the disk (or the file system's quota) is
// full.
func isFull(err error) bool {
	var e interface{ Code() int }
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_FULL
}

// cutoff is t in Unix nanoseconds, as updated_at holds times, clamped to
// the int64 range: no stored time is before a cutoff before it, every one
// before one after it.
func cutoff(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// execOnce prepares q on conn, runs it once and closes it.
func execOnce(conn driver.Conn, q string) (err error) {
	st, err := prepare(conn, q)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.close()) }()
	_, err = st.run()
	return err
}
