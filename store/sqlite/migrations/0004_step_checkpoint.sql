-- 0004: a step's checkpoint: what its handler saved of its progress, so a
-- later attempt resumes from it (store.Step.Checkpoint). JSON, stored as the
-- bytes given; NULL for none. A step change without one keeps it
-- (coalesce in the update).

ALTER TABLE steps ADD COLUMN checkpoint BLOB;
