-- 0001: tasks, their steps and their audit trail.
-- Times are Unix nanoseconds (UTC); NULL stands for the zero time.
-- JSON values are stored as the bytes given; NULL stands for none.

CREATE TABLE tasks (
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
	idempotency_key TEXT    UNIQUE,  -- NULL when none was given
	created_at      INTEGER,
	updated_at      INTEGER,
	deadline        INTEGER          -- NULL when the task has none
) STRICT;

CREATE INDEX tasks_state ON tasks (state);
CREATE INDEX tasks_namespace_name ON tasks (namespace, name);

CREATE TABLE steps (
	task_id         TEXT    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
	name            TEXT    NOT NULL,
	position        INTEGER NOT NULL,
	state           TEXT    NOT NULL,
	attempts        INTEGER NOT NULL,
	result          BLOB,            -- JSON
	error           TEXT,            -- JSON of store.Failure
	next_attempt_at INTEGER,
	updated_at      INTEGER,
	PRIMARY KEY (task_id, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE transitions (
	seq        INTEGER PRIMARY KEY,      -- apply order (rowid, as tasks.seq)
	task_id    TEXT    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
	step       TEXT    NOT NULL,                 -- '' for the task itself
	from_state TEXT    NOT NULL,
	to_state   TEXT    NOT NULL,
	attempt    INTEGER NOT NULL,
	at         INTEGER,
	actor      TEXT    NOT NULL, -- Transition.By
	reason     TEXT    NOT NULL
) STRICT;

CREATE INDEX transitions_task ON transitions (task_id); -- rows within a task in seq (rowid) order
