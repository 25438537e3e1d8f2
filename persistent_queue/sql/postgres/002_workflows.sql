-- Schema version 2 (placeholder): the columns the core statements read and write.

ALTER TABLE jobs ADD COLUMN dedup_key text;
ALTER TABLE dead_letters ADD COLUMN dedup_key text;
ALTER TABLE jobs ADD COLUMN depends_on text;
ALTER TABLE dead_letters ADD COLUMN depends_on text;
ALTER TABLE queues ADD COLUMN dedup_hits integer NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN rejected_full integer NOT NULL DEFAULT 0;
