package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gotasker/tasker/store"
)

// Column encodings: times are Unix nanoseconds, NULL for the zero time;
// JSON values are stored verbatim, NULL for none; Tags is a JSON array and
// Failure a JSON object, NULL when empty or nil.

func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func encodeTags(tags []string) (any, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(tags)
	return string(b), err
}

func encodeTrace(trace map[string]string) (any, error) {
	if len(trace) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(trace)
	return string(b), err
}

func decodeTrace(s sql.NullString) (map[string]string, error) {
	if !s.Valid {
		return nil, nil
	}
	var trace map[string]string
	if err := json.Unmarshal([]byte(s.String), &trace); err != nil {
		return nil, fmt.Errorf("decode trace: %w", err)
	}
	return trace, nil
}

func decodeTags(s sql.NullString) ([]string, error) {
	if !s.Valid {
		return nil, nil
	}
	var tags []string
	err := json.Unmarshal([]byte(s.String), &tags)
	return tags, err
}

func encodeFailure(f *store.Failure) (any, error) {
	if f == nil {
		return nil, nil
	}
	b, err := json.Marshal(f)
	return string(b), err
}

func decodeFailure(s sql.NullString) (*store.Failure, error) {
	if !s.Valid {
		return nil, nil
	}
	var f store.Failure
	if err := json.Unmarshal([]byte(s.String), &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// taskColumns are the columns scanTask reads, in order.
const taskColumns = `id, namespace, name, version, state, initiator, source_system,
	reason, tags, context, idempotency_key, created_at, updated_at, deadline, trace`

func scanTask(sc scanner) (store.Task, error) {
	var (
		t                store.Task
		tags, key, trace sql.NullString
		input            []byte
		created, updated sql.NullInt64
		deadline         sql.NullInt64
	)
	err := sc.Scan(&t.ID, &t.Namespace, &t.Name, &t.Version, &t.State, &t.Initiator,
		&t.SourceSystem, &t.Reason, &tags, &input, &key, &created, &updated, &deadline, &trace)
	if err != nil {
		return store.Task{}, err
	}
	if t.Tags, err = decodeTags(tags); err != nil {
		return store.Task{}, err
	}
	if t.Trace, err = decodeTrace(trace); err != nil {
		return store.Task{}, err
	}
	t.Context, t.IdempotencyKey = input, key.String
	t.CreatedAt, t.UpdatedAt, t.Deadline = fromNanos(created), fromNanos(updated), fromNanos(deadline)
	return t, nil
}

// stepColumns are the columns scanStep reads, in order.
const stepColumns = `task_id, name, position, state, attempts, result, error,
	next_attempt_at, updated_at, checkpoint`

func scanStep(sc scanner) (store.Step, error) {
	var (
		s             store.Step
		failure       sql.NullString
		next, updated sql.NullInt64
		result, cp    []byte
	)
	err := sc.Scan(&s.TaskID, &s.Name, &s.Position, &s.State, &s.Attempts, &result,
		&failure, &next, &updated, &cp)
	if err != nil {
		return store.Step{}, err
	}
	if s.Error, err = decodeFailure(failure); err != nil {
		return store.Step{}, err
	}
	s.Result, s.Checkpoint = result, cp
	s.NextAttemptAt, s.UpdatedAt = fromNanos(next), fromNanos(updated)
	return s, nil
}

// transitionColumns are the columns scanTransition reads, in order.
const transitionColumns = `task_id, step, from_state, to_state, attempt, at, actor, reason, error`

func scanTransition(sc scanner) (store.Transition, error) {
	var (
		tr      store.Transition
		at      sql.NullInt64
		failure sql.NullString
	)
	err := sc.Scan(&tr.TaskID, &tr.Step, &tr.From, &tr.To, &tr.Attempt, &at, &tr.By, &tr.Reason, &failure)
	if err != nil {
		return store.Transition{}, err
	}
	tr.At = fromNanos(at)
	tr.Error, err = decodeFailure(failure)
	return tr, err
}

// deadLetterColumns are the columns scanDeadLetter reads, in order.
const deadLetterColumns = `id, task_id, reason, message, status, created_at, resolved_at,
	resolved_by, resolution`

func scanDeadLetter(sc scanner) (store.DeadLetter, error) {
	var (
		d                 store.DeadLetter
		created, resolved sql.NullInt64
	)
	err := sc.Scan(&d.ID, &d.TaskID, &d.Reason, &d.Message, &d.Status, &created, &resolved,
		&d.ResolvedBy, &d.Resolution)
	d.CreatedAt, d.ResolvedAt = fromNanos(created), fromNanos(resolved)
	return d, err
}
