package postgres

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The statements, written with {s} where the schema goes; queriesFor
// qualifies them. Every parameter is cast, so that its type does not
// depend on how the server infers it. A lease's ttl is a number of
// microseconds ($n::bigint * interval '1 microsecond').

// createSQL stores a task and its steps in one statement, leased when the
// owner ($16) is not NULL; a task not leased notifies the wake channel
// ($27). It returns no row when the idempotency key ($11) is taken.
const createSQL = `WITH ins AS (
	INSERT INTO {s}.tasks (id, namespace, name, version, state, initiator, source_system, reason, tags,
		context, idempotency_key, created_at, updated_at, deadline, trace, owner, lease_token, lease_expires)
	VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text[],
		$10::bytea, $11::text, $12::bigint, $13::bigint, $14::bigint, $15::text, $16::text,
		CASE WHEN $16::text IS NULL THEN 0 ELSE 1 END,
		CASE WHEN $16::text IS NULL THEN NULL ELSE now() + $17::bigint * interval '1 microsecond' END)
	ON CONFLICT (namespace, name, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
	RETURNING id, lease_expires
), st AS (
	INSERT INTO {s}.steps (task_id, name, position, state, attempts, result, error, next_attempt_at,
		updated_at, checkpoint)
	SELECT ins.id, s.* FROM ins, unnest($18::text[], $19::bigint[], $20::text[], $21::bigint[], $22::bytea[],
		$23::text[], $24::bigint[], $25::bigint[], $26::bytea[]) AS s
), n AS (
	SELECT pg_notify($27::text, '') FROM ins WHERE $16::text IS NULL
)
SELECT id, lease_expires, (SELECT count(*) FROM n) FROM ins`

const taskByKeySQL = `SELECT id FROM {s}.tasks WHERE namespace = $1::text AND name = $2::text AND idempotency_key = $3::text`

// The fencing locks of an Apply: the tasks of its fenced changes, in ID
// order so that concurrent batches cannot deadlock on them. A shared lock
// lets the changes of one task's parallel steps commit side by side while
// no AcquireTasks (FOR UPDATE SKIP LOCKED) can take the task over; a batch
// that changes a fenced task's own row takes the stronger lock at once.
const (
	lockSharedSQL = `SELECT count(*) FROM (SELECT 1 FROM {s}.tasks WHERE id = ANY($1::text[])
	ORDER BY id FOR SHARE) l`
	lockUpdateSQL = `SELECT count(*) FROM (SELECT 1 FROM {s}.tasks WHERE id = ANY($1::text[])
	ORDER BY id FOR NO KEY UPDATE) l`
)

// outboxCTE inserts the outbox entries ($a ids, $b data) of a change
// whose compare-and-swap u matched, with the change's task ($1) and At.
const outboxCTE = `ob AS (
	INSERT INTO {s}.outbox (id, task_id, data, created_at)
	SELECT o.id, $1::text, o.data, %AT% FROM u, unnest(%IDS%::text[], %DATA%::bytea[]) WITH ORDINALITY AS o(id, data, n)
	ORDER BY o.n
)`

// updateStepSQL is a step change's compare-and-swap, with its transition
// and outbox entries; when it matches nothing, tasker_refuse raises.
var updateStepSQL = `WITH u AS (
	UPDATE {s}.steps SET state = $4::text, attempts = $5::bigint, result = $6::bytea, error = $7::text,
		next_attempt_at = $8::bigint, updated_at = $9::bigint, checkpoint = coalesce($10::bytea, checkpoint)
	WHERE task_id = $1::text AND name = $2::text AND state = $3::text AND attempts = $11::bigint
		AND ($12::bigint = 0 OR (SELECT lease_token FROM {s}.tasks WHERE id = $1::text) = $12::bigint)
	RETURNING 1
), tr AS (
	INSERT INTO {s}.transitions (task_id, step, from_state, to_state, attempt, at, actor, reason, error)
	SELECT $1::text, $2::text, $3::text, $4::text, $5::bigint, $9::bigint, $13::text, $14::text, $7::text FROM u
), ` + outbox("$9::bigint", "$15", "$16") + `
SELECT CASE WHEN EXISTS (SELECT FROM u) THEN 0
	ELSE {s}.tasker_refuse($1::text, $2::text, $3::text, $11::bigint, $12::bigint, false) END`

// createStepSQL is a step change from "": it creates the step while the
// task exists and has none of that name.
var createStepSQL = `WITH u AS (
	INSERT INTO {s}.steps (task_id, name, position, state, attempts, result, error, next_attempt_at,
		updated_at, checkpoint)
	SELECT $1::text, $2::text, $3::bigint, $4::text, $5::bigint, $6::bytea, $7::text, $8::bigint, $9::bigint,
		$10::bytea
	WHERE EXISTS (SELECT FROM {s}.tasks WHERE id = $1::text AND ($11::bigint = 0 OR lease_token = $11::bigint))
	ON CONFLICT DO NOTHING
	RETURNING 1
), tr AS (
	INSERT INTO {s}.transitions (task_id, step, from_state, to_state, attempt, at, actor, reason, error)
	SELECT $1::text, $2::text, '', $4::text, $5::bigint, $9::bigint, $12::text, $13::text, $7::text FROM u
), ` + outbox("$9::bigint", "$14", "$15") + `
SELECT CASE WHEN EXISTS (SELECT FROM u) THEN 0
	ELSE {s}.tasker_refuse($1::text, $2::text, '', 0, $11::bigint, true) END`

// updateTaskSQL is a task change's compare-and-swap, with its transition,
// its dead-letter operations (resolving the entries pending before it,
// $9, then adding its own, $10–$12) and its outbox entries. Sibling
// statements of one WITH see the same snapshot, so the resolution does not
// see the entry added beside it.
var updateTaskSQL = `WITH u AS (
	UPDATE {s}.tasks SET state = $3::text, updated_at = $4::bigint, deadline = coalesce($5::bigint, deadline)
	WHERE id = $1::text AND state = $2::text AND ($6::bigint = 0 OR lease_token = $6::bigint)
	RETURNING 1
), tr AS (
	INSERT INTO {s}.transitions (task_id, step, from_state, to_state, attempt, at, actor, reason, error)
	SELECT $1::text, '', $2::text, $3::text, 0, $4::bigint, $7::text, $8::text, NULL FROM u
), rs AS (
	UPDATE {s}.dead_letters SET status = 'resolved', resolved_at = $4::bigint, resolved_by = $7::text,
		resolution = $8::text
	WHERE $9::boolean AND task_id = $1::text AND status = 'pending' AND EXISTS (SELECT FROM u)
), dl AS (
	INSERT INTO {s}.dead_letters (id, task_id, reason, message, status, created_at, resolved_by, resolution)
	SELECT $10::text, $1::text, $11::text, $12::text, 'pending', $4::bigint, '', '' FROM u
	WHERE $10::text IS NOT NULL
), ` + outbox("$4::bigint", "$13", "$14") + `
SELECT CASE WHEN EXISTS (SELECT FROM u) THEN 0
	ELSE {s}.tasker_refuse($1::text, '', $2::text, 0, $6::bigint, false) END`

func outbox(at, ids, data string) string {
	return strings.NewReplacer("%AT%", at, "%IDS%", ids, "%DATA%", data).Replace(outboxCTE)
}

// The reads. Columns are listed in the order the scan functions read them.
const (
	taskColumns = `id, namespace, name, version, state, initiator, source_system, reason, tags, context,
	idempotency_key, created_at, updated_at, deadline, trace, owner`
	stepColumns = `task_id, name, position, state, attempts, result, error, next_attempt_at,
	updated_at, checkpoint`
	transitionColumns = `task_id, step, from_state, to_state, attempt, at, actor, reason, error`
	deadLetterColumns = `id, task_id, reason, message, status, created_at, resolved_at, resolved_by, resolution`

	taskSQL        = `SELECT ` + taskColumns + ` FROM {s}.tasks WHERE id = $1::text`
	taskExistsSQL  = `SELECT EXISTS (SELECT FROM {s}.tasks WHERE id = $1::text)`
	stepsSQL       = `SELECT ` + stepColumns + ` FROM {s}.steps WHERE task_id = $1::text ORDER BY position, name`
	transitionsSQL = `SELECT ` + transitionColumns + ` FROM {s}.transitions WHERE task_id = $1::text ORDER BY seq`
	ackOutboxSQL   = `DELETE FROM {s}.outbox WHERE id = ANY($1::text[])`
)

// The leases, by the server's clock.
const (
	acquireSQL = `WITH c AS (
	SELECT id FROM {s}.tasks
	WHERE state = ANY($2::text[]) AND (owner IS NULL OR lease_expires <= now())
	ORDER BY seq LIMIT $3::bigint
	FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE {s}.tasks t SET owner = $1::text, lease_token = t.lease_token + 1,
	lease_expires = now() + $4::bigint * interval '1 microsecond'
FROM c WHERE t.id = c.id
RETURNING t.id, t.lease_token, t.lease_expires`

	renewSQL = `WITH l AS (
	SELECT id FROM {s}.tasks WHERE owner = $1::text AND state = ANY($2::text[]) ORDER BY id FOR NO KEY UPDATE
)
UPDATE {s}.tasks t SET lease_expires = now() + $3::bigint * interval '1 microsecond'
FROM l WHERE t.id = l.id
RETURNING t.id, t.lease_token, t.lease_expires`

	releaseSQL = `WITH r AS (
	SELECT t.id FROM {s}.tasks t
	JOIN unnest($1::text[], $2::bigint[]) AS g(id, token) ON t.id = g.id AND t.lease_token = g.token
	WHERE t.owner IS NOT NULL
	ORDER BY t.id
	FOR NO KEY UPDATE OF t
), u AS (
	UPDATE {s}.tasks t SET owner = NULL, lease_expires = NULL FROM r WHERE t.id = r.id RETURNING 1
), n AS (
	SELECT pg_notify($3::text, '') WHERE EXISTS (SELECT FROM u)
)
SELECT (SELECT count(*) FROM n)`
)

// queries are the statements of one schema.
type queries struct {
	schema  string // as named, unquoted
	channel string // the wake channel's name, unquoted

	create, taskByKey, lockShared, lockUpdate  string
	updateStep, createStep, updateTask         string
	task, taskExists, steps, transitions       string
	acquire, renew, release, ackOutbox, prefix string
	purge                                      string
}

// queriesFor returns the statements qualified by schema.
func queriesFor(schema string) *queries {
	quoted := pgx.Identifier{schema}.Sanitize()
	q := func(sql string) string { return strings.ReplaceAll(sql, "{s}", quoted) }
	return &queries{
		schema: schema, channel: channelFor(schema),
		create: q(createSQL), taskByKey: q(taskByKeySQL),
		lockShared: q(lockSharedSQL), lockUpdate: q(lockUpdateSQL),
		updateStep: q(updateStepSQL), createStep: q(createStepSQL), updateTask: q(updateTaskSQL),
		task: q(taskSQL), taskExists: q(taskExistsSQL), steps: q(stepsSQL), transitions: q(transitionsSQL),
		acquire: q(acquireSQL), renew: q(renewSQL), release: q(releaseSQL), ackOutbox: q(ackOutboxSQL),
		purge:  q(purgeSQL),
		prefix: quoted + ".",
	}
}

// maxIdentifier is the longest name PostgreSQL keeps (NAMEDATALEN - 1).
const maxIdentifier = 63

// channelFor returns the wake channel of schema: tasker_wake for public,
// the default, and "schema.tasker_wake" for any other, so that stores on
// different schemas of one database do not wake each other; a name too long
// for an identifier is shortened with a hash of the schema.
func channelFor(schema string) string {
	if schema == "public" {
		return "tasker_wake"
	}
	if ch := schema + ".tasker_wake"; len(ch) <= maxIdentifier {
		return ch
	}
	sum := sha256.Sum256([]byte(schema))
	return "tasker_wake." + hex.EncodeToString(sum[:16])
}
