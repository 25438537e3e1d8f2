-- Schema version 2: workflows (dependencies, topics, idempotent enqueue, bounded queues,
-- recurring schedules). Their statements live in `workflows.sql`.

-- Idempotent enqueue: the key a producer gave, kept with the job (and its dead letter).
ALTER TABLE jobs ADD COLUMN dedup_key TEXT;
ALTER TABLE dead_letters ADD COLUMN dedup_key TEXT;
CREATE INDEX jobs_dedup ON jobs (queue, dedup_key, id) WHERE dedup_key IS NOT NULL;

-- The ids a job waits for, as a JSON array (NULL when none), shown with the job.
ALTER TABLE jobs ADD COLUMN depends_on TEXT;
ALTER TABLE dead_letters ADD COLUMN depends_on TEXT;

-- Counters shown by stats().
ALTER TABLE queues ADD COLUMN dedup_hits INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN rejected_full INTEGER NOT NULL DEFAULT 0;

-- One row per edge "job_id runs after depends_on". Edges are kept while the job lives so a
-- dead-lettering can cascade and a redrive can undo it.
CREATE TABLE job_dependencies (
    job_id     INTEGER NOT NULL,
    depends_on INTEGER NOT NULL,
    PRIMARY KEY (job_id, depends_on)
) WITHOUT ROWID;
CREATE INDEX job_dependencies_parent ON job_dependencies (depends_on, job_id);

-- The last ack of a job's dependencies makes it ready, inside the ack's own statement (and so
-- its transaction). Only jobs that someone depends on find anything in the index probe.
CREATE TRIGGER jobs_release_dependents
AFTER UPDATE OF state ON jobs
WHEN NEW.state = 'done' AND OLD.state != 'done'
BEGIN
    UPDATE jobs
    SET state = 'ready', updated_at = NEW.updated_at
    WHERE id IN (SELECT d.job_id FROM job_dependencies AS d WHERE d.depends_on = NEW.id)
      AND state = 'waiting'
      AND NOT EXISTS (
          SELECT 1 FROM job_dependencies AS e
          LEFT JOIN jobs AS p ON p.id = e.depends_on
          LEFT JOIN dead_letters AS x ON x.id = e.depends_on
          WHERE e.job_id = jobs.id
            AND ((p.id IS NOT NULL AND p.state != 'done') OR x.id IS NOT NULL)
      );
END;

-- A done job that is cleaned up no longer needs its own edges.
CREATE TRIGGER jobs_forget_dependencies
AFTER DELETE ON jobs
WHEN OLD.state = 'done' AND OLD.depends_on IS NOT NULL
BEGIN
    DELETE FROM job_dependencies WHERE job_id = OLD.id;
END;

-- Topics: publishing puts one copy of a job into every subscribed queue.
CREATE TABLE subscriptions (
    topic      TEXT NOT NULL,
    queue      TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (topic, queue)
) WITHOUT ROWID;

-- Recurring schedules. `next_run_at` is the next tick; firing a tick enqueues the job and
-- moves `next_run_at` in one transaction, so concurrent schedulers cannot fire it twice.
CREATE TABLE schedules (
    name         TEXT    PRIMARY KEY,
    queue        TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    headers      TEXT,
    priority     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER CHECK (max_attempts IS NULL OR max_attempts >= 1),
    every        REAL    CHECK (every IS NULL OR every > 0),
    cron         TEXT,
    timezone     TEXT    NOT NULL DEFAULT 'UTC',
    next_run_at  REAL    NOT NULL,
    last_run_at  REAL,
    last_job_id  INTEGER,
    runs         INTEGER NOT NULL DEFAULT 0,
    missed       INTEGER NOT NULL DEFAULT 0,
    created_at   REAL    NOT NULL,
    updated_at   REAL    NOT NULL,
    CHECK ((every IS NULL) != (cron IS NULL))
);
CREATE INDEX schedules_due ON schedules (next_run_at);
