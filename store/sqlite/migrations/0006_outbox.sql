-- 0006: the transactional outbox: messages (the engine's domain events)
-- written in the same transaction as the change that carries them
-- (store.Change.Outbox), deleted once delivered (store.Outboxer.AckOutbox).

CREATE TABLE outbox (
	seq        INTEGER PRIMARY KEY, -- insertion order (rowid, as tasks.seq)
	id         TEXT    NOT NULL UNIQUE,
	task_id    TEXT    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
	data       BLOB,                -- JSON, opaque to the store
	created_at INTEGER
) STRICT;
