-- 0005: a transition keeps the failure its change set on the step (JSON of
-- store.Failure; NULL for none), so the audit trail says why each attempt
-- failed. Rows from earlier versions have none.

ALTER TABLE transitions ADD COLUMN error TEXT;
