-- 0002: an idempotency key is unique among the tasks of one template
-- (namespace, name), not among all tasks. 0001 made the key UNIQUE as a
-- column constraint, whose index only rebuilding the table removes; migrate
-- runs migrations with foreign keys off, so dropping the old table does not
-- cascade to steps and transitions, and checks them before committing.

CREATE TABLE tasks_new (
	seq             INTEGER PRIMARY KEY, -- creation order (rowid: always above every existing row)
	id              TEXT    NOT NULL UNIQUE,
	namespace       TEXT    NOT NULL,
	name            TEXT    NOT NULL,
	version         TEXT    NOT NULL,
	state           TEXT    NOT NULL,
	initiator       TEXT    NOT NULL,
	source_system   TEXT    NOT NULL,
	reason          TEXT    NOT NULL,
	tags            TEXT,            -- JSON array of strings
	context         BLOB,            -- JSON, the task input
	idempotency_key TEXT,            -- NULL when none was given; see tasks_idempotency_key
	created_at      INTEGER,
	updated_at      INTEGER,
	deadline        INTEGER          -- NULL when the task has none
) STRICT;

INSERT INTO tasks_new (seq, id, namespace, name, version, state, initiator, source_system,
	reason, tags, context, idempotency_key, created_at, updated_at, deadline)
SELECT seq, id, namespace, name, version, state, initiator, source_system,
	reason, tags, context, idempotency_key, created_at, updated_at, deadline
FROM tasks;

DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;

CREATE INDEX tasks_state ON tasks (state);
CREATE INDEX tasks_namespace_name ON tasks (namespace, name);
CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (namespace, name, idempotency_key)
	WHERE idempotency_key IS NOT NULL;
