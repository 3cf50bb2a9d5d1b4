-- 0007: a task keeps the trace context of its submission (JSON object of
-- string to string, store.Task.Trace; NULL for none), so that its steps
-- continue the submitter's trace after a restart. Rows from earlier
-- versions have none.

ALTER TABLE tasks ADD COLUMN trace TEXT;
