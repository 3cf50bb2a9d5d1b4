package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/gotasker/tasker/store"
)

// Column encodings: the engine's times are Unix nanoseconds, NULL for the
// zero time; JSON values are bytea, stored verbatim, NULL for none; Tags is
// a text[] and Failure and Trace JSON text, NULL when empty or nil.

func nanos(t time.Time) pgtype.Int8 {
	if t.IsZero() {
		return pgtype.Int8{}
	}
	return pgtype.Int8{Int64: t.UnixNano(), Valid: true}
}

func fromNanos(n pgtype.Int8) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// nullText is s as a text parameter, NULL when empty.
func nullText(s string) pgtype.Text {
	return pgtype.Text{String: s, Valid: s != ""}
}

// tagsParam is tags as a text[] parameter, NULL when empty.
func tagsParam(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	return tags
}

func encodeJSON[T any](v T, empty bool) (pgtype.Text, error) {
	if empty {
		return pgtype.Text{}, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return pgtype.Text{}, err
	}
	return pgtype.Text{String: string(b), Valid: true}, nil
}

func encodeFailure(f *store.Failure) (pgtype.Text, error) { return encodeJSON(f, f == nil) }

func encodeTrace(trace map[string]string) (pgtype.Text, error) {
	return encodeJSON(trace, len(trace) == 0)
}

func decodeFailure(s pgtype.Text) (*store.Failure, error) {
	if !s.Valid {
		return nil, nil
	}
	var f store.Failure
	if err := json.Unmarshal([]byte(s.String), &f); err != nil {
		return nil, fmt.Errorf("decode failure: %w", err)
	}
	return &f, nil
}

func decodeTrace(s pgtype.Text) (map[string]string, error) {
	if !s.Valid {
		return nil, nil
	}
	var trace map[string]string
	if err := json.Unmarshal([]byte(s.String), &trace); err != nil {
		return nil, fmt.Errorf("decode trace: %w", err)
	}
	return trace, nil
}

// nonEmpty returns b, or nil when it is empty: a NULL or empty bytea is
// none, and an empty parameter is stored as NULL.
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func scanTask(row pgx.Row) (store.Task, error) {
	var (
		t                       store.Task
		key, trace, owner       pgtype.Text
		created, updated, until pgtype.Int8
	)
	err := row.Scan(&t.ID, &t.Namespace, &t.Name, &t.Version, &t.State, &t.Initiator, &t.SourceSystem,
		&t.Reason, &t.Tags, &t.Context, &key, &created, &updated, &until, &trace, &owner)
	if err != nil {
		return store.Task{}, err
	}
	if len(t.Tags) == 0 {
		t.Tags = nil
	}
	if t.Trace, err = decodeTrace(trace); err != nil {
		return store.Task{}, err
	}
	t.Context, t.IdempotencyKey, t.Owner = nonEmpty(t.Context), key.String, owner.String
	t.CreatedAt, t.UpdatedAt, t.Deadline = fromNanos(created), fromNanos(updated), fromNanos(until)
	return t, nil
}

func scanStep(row pgx.Row) (store.Step, error) {
	var (
		s             store.Step
		failure       pgtype.Text
		next, updated pgtype.Int8
		position      int64
		attempts      int64
	)
	err := row.Scan(&s.TaskID, &s.Name, &position, &s.State, &attempts, &s.Result, &failure, &next,
		&updated, &s.Checkpoint)
	if err != nil {
		return store.Step{}, err
	}
	if s.Error, err = decodeFailure(failure); err != nil {
		return store.Step{}, err
	}
	s.Position, s.Attempts = int(position), int(attempts)
	s.Result, s.Checkpoint = nonEmpty(s.Result), nonEmpty(s.Checkpoint)
	s.NextAttemptAt, s.UpdatedAt = fromNanos(next), fromNanos(updated)
	return s, nil
}

func scanTransition(row pgx.Row) (store.Transition, error) {
	var (
		tr      store.Transition
		at      pgtype.Int8
		failure pgtype.Text
		attempt int64
	)
	err := row.Scan(&tr.TaskID, &tr.Step, &tr.From, &tr.To, &attempt, &at, &tr.By, &tr.Reason, &failure)
	if err != nil {
		return store.Transition{}, err
	}
	tr.Attempt, tr.At = int(attempt), fromNanos(at)
	tr.Error, err = decodeFailure(failure)
	return tr, err
}

func scanDeadLetter(row pgx.Row) (store.DeadLetter, error) {
	var (
		d                 store.DeadLetter
		created, resolved pgtype.Int8
	)
	err := row.Scan(&d.ID, &d.TaskID, &d.Reason, &d.Message, &d.Status, &created, &resolved,
		&d.ResolvedBy, &d.Resolution)
	d.CreatedAt, d.ResolvedAt = fromNanos(created), fromNanos(resolved)
	return d, err
}

func scanOutbox(row pgx.Row) (store.OutboxEntry, error) {
	var (
		e       store.OutboxEntry
		created pgtype.Int8
	)
	err := row.Scan(&e.ID, &e.TaskID, &e.Data, &created)
	e.Data, e.CreatedAt = nonEmpty(e.Data), fromNanos(created)
	return e, err
}

// collect scans every row of rows with scan.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
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
