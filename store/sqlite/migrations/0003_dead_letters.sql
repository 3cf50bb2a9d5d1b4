-- 0003: the dead-letter list: tasks set aside for an operator, and why.
-- An entry is added and resolved by task changes (store.Change.DeadLetter,
-- store.Change.ResolveDeadLetters), in the same transaction.

CREATE TABLE dead_letters (
	seq         INTEGER PRIMARY KEY, -- insertion order (rowid, as tasks.seq)
	id          TEXT    NOT NULL UNIQUE,
	task_id     TEXT    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
	reason      TEXT    NOT NULL,
	message     TEXT    NOT NULL,
	status      TEXT    NOT NULL, -- 'pending' or 'resolved'
	created_at  INTEGER,
	resolved_at INTEGER,          -- NULL while pending
	resolved_by TEXT    NOT NULL,
	resolution  TEXT    NOT NULL
) STRICT;

CREATE INDEX dead_letters_task ON dead_letters (task_id); -- rows within a task in seq (rowid) order
CREATE INDEX dead_letters_status ON dead_letters (status);
