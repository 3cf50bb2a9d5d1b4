-- 0001: tasks with their leases, steps, the audit trail, the dead-letter
-- list and the outbox. Migrations run with search_path set to the store's
-- schema alone, so names here are unqualified.
--
-- Times the engine gives are Unix nanoseconds (UTC), NULL for the zero time,
-- so that they round-trip to the nanosecond; lease expiries are the
-- server's own timestamptz (now()), the one clock all engines agree on.
-- JSON values are bytea, stored as the bytes given and never re-encoded;
-- NULL stands for none. seq columns keep insertion order.

CREATE TABLE tasks (
	seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
	id              text   PRIMARY KEY,
	namespace       text   NOT NULL,
	name            text   NOT NULL,
	version         text   NOT NULL,
	state           text   NOT NULL,
	initiator       text   NOT NULL,
	source_system   text   NOT NULL,
	reason          text   NOT NULL,
	tags            text[],          -- NULL when none
	context         bytea,           -- JSON, the task input
	idempotency_key text,            -- NULL when none was given
	created_at      bigint,
	updated_at      bigint,
	deadline        bigint,          -- NULL when the task has none
	trace           text,            -- JSON object of strings, NULL when none
	owner           text,            -- the lease's holder, NULL when free
	lease_token     bigint NOT NULL DEFAULT 0, -- grows on every acquisition
	lease_expires   timestamptz      -- NULL when free
);

CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (namespace, name, idempotency_key)
	WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_namespace_name ON tasks (namespace, name, seq);
CREATE INDEX tasks_state ON tasks (state, seq);
CREATE INDEX tasks_owner ON tasks (owner) WHERE owner IS NOT NULL;
CREATE INDEX tasks_tags ON tasks USING gin (tags);

CREATE TABLE steps (
	task_id         text    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
	name            text    NOT NULL,
	position        bigint  NOT NULL,
	state           text    NOT NULL,
	attempts        bigint  NOT NULL,
	result          bytea,           -- JSON
	error           text,            -- JSON of store.Failure
	next_attempt_at bigint,
	updated_at      bigint,
	checkpoint      bytea,           -- JSON
	PRIMARY KEY (task_id, name)
);

CREATE TABLE transitions (
	seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	task_id    text   NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
	step       text   NOT NULL,      -- '' for the task itself
	from_state text   NOT NULL,
	to_state   text   NOT NULL,
	attempt    bigint NOT NULL,
	at         bigint,
	actor      text   NOT NULL,      -- Transition.By
	reason     text   NOT NULL,
	error      text                  -- JSON of store.Failure
);

CREATE INDEX transitions_task ON transitions (task_id, seq);

CREATE TABLE dead_letters (
	seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id          text   NOT NULL CONSTRAINT dead_letters_id UNIQUE,
	task_id     text   NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
	reason      text   NOT NULL,
	message     text   NOT NULL,
	status      text   NOT NULL,     -- 'pending' or 'resolved'
	created_at  bigint,
	resolved_at bigint,              -- NULL while pending
	resolved_by text   NOT NULL,
	resolution  text   NOT NULL
);

CREATE INDEX dead_letters_task ON dead_letters (task_id, seq);
CREATE INDEX dead_letters_status ON dead_letters (status, seq);

CREATE TABLE outbox (
	seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id         text   NOT NULL CONSTRAINT outbox_id UNIQUE,
	task_id    text   NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
	data       bytea,                -- JSON, opaque to the store
	created_at bigint
);

-- tasker_refuse explains why a change of a batch matched nothing, by raising: the
-- batch's implicit transaction rolls back. SQLSTATE TK002 is a lost lease
-- (store.ErrLeaseLost), TK001 any other conflict (store.ErrConflict). It is
-- called only on that path; the lease is checked first.
CREATE FUNCTION tasker_refuse(task text, step text, from_state text, from_attempt bigint, lease bigint,
	creating boolean) RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	t_state text;
	t_token bigint;
	s_state text;
	s_attempts bigint;
BEGIN
	SELECT t.state, t.lease_token INTO t_state, t_token FROM tasks t WHERE t.id = task;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'TK001', MESSAGE = 'unknown task';
	END IF;
	IF lease <> 0 AND t_token <> lease THEN
		RAISE EXCEPTION USING ERRCODE = 'TK002', MESSAGE = t_token::text;
	END IF;
	IF step = '' THEN
		RAISE EXCEPTION USING ERRCODE = 'TK001', MESSAGE = format('task is "%s", want "%s"', t_state, from_state);
	END IF;
	IF creating THEN
		RAISE EXCEPTION USING ERRCODE = 'TK001', MESSAGE = 'step already exists';
	END IF;
	SELECT s.state, s.attempts INTO s_state, s_attempts FROM steps s WHERE s.task_id = task AND s.name = step;
	IF NOT FOUND THEN
		RAISE EXCEPTION USING ERRCODE = 'TK001', MESSAGE = 'unknown step';
	END IF;
	RAISE EXCEPTION USING ERRCODE = 'TK001', MESSAGE = format('step is "%s" attempt %s, want "%s" attempt %s',
		s_state, s_attempts, from_state, from_attempt);
END
$$;
