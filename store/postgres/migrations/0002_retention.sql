-- 0002: what PurgeTasks selects by: finished tasks by state and age, and
-- whether a task still has outbox entries to deliver.
CREATE INDEX tasks_state_updated ON tasks (state, updated_at, seq);
CREATE INDEX outbox_task ON outbox (task_id);
