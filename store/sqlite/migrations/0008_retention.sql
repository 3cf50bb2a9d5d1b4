-- 0008: retention (store.Purger). PurgeTasks selects a state's tasks least
-- recently updated first, and deleting a task looks up its outbox entries
-- (the foreign key's cascade, and the check that none is pending), which
-- had no index.

CREATE INDEX tasks_state_updated ON tasks (state, updated_at);
CREATE INDEX outbox_task ON outbox (task_id);
