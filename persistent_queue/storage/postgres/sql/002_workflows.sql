-- Schema version 2 of the PostgreSQL backend: workflows (dependencies, topics, idempotent
-- enqueue, bounded queues, recurring schedules), mirroring sql/sqlite/002_workflows.sql.
-- Their statements live in `workflows.sql`.
--
-- SQLite serialises every writer; PostgreSQL runs writers side by side under READ COMMITTED,
-- so each workflow invariant here names the lock that keeps it (see postgres_workflows.py):
-- dedup keys and bounded queues the queue's row, dependencies the rows of the jobs involved,
-- schedules the schedule's row.

-- Idempotent enqueue: the key a producer gave, kept with the job (and its dead letter).
ALTER TABLE jobs ADD COLUMN dedup_key text;
ALTER TABLE dead_letters ADD COLUMN dedup_key text;
CREATE INDEX jobs_dedup ON jobs (queue, dedup_key, id) WHERE dedup_key IS NOT NULL;

-- The ids a job waits for, as a JSON array (NULL when none), shown with the job.
ALTER TABLE jobs ADD COLUMN depends_on text;
ALTER TABLE dead_letters ADD COLUMN depends_on text;

-- Counters shown by stats().
ALTER TABLE queues ADD COLUMN dedup_hits bigint NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN rejected_full bigint NOT NULL DEFAULT 0;

-- One row per edge "job_id runs after depends_on". Edges are kept while the job lives so a
-- dead-lettering can cascade and a redrive can undo it.
CREATE TABLE job_dependencies (
    job_id     bigint NOT NULL,
    depends_on bigint NOT NULL,
    PRIMARY KEY (job_id, depends_on)
);
CREATE INDEX job_dependencies_parent ON job_dependencies (depends_on, job_id);

-- The last ack of a job's dependencies makes it ready, inside the ack's own statement (and so
-- its transaction). Two dependencies acked at once in two transactions: each ack locks the
-- waiting dependent before looking at its other dependencies, so the second waits for the
-- first to commit; each statement of a PL/pgSQL function takes a fresh snapshot under READ
-- COMMITTED, so the second's look then sees the first ack and releases the job. Dependents
-- are visited in id order (no deadlock between two acks) and every statement is keyed by an
-- id, so the plans stay index lookups whatever the table statistics say. A released job's
-- queue is notified like an enqueue.
CREATE FUNCTION jobs_release_dependents() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    child bigint;
    child_queue text;
BEGIN
    FOR child IN
        SELECT d.job_id FROM job_dependencies AS d WHERE d.depends_on = NEW.id ORDER BY d.job_id
    LOOP
        SELECT queue INTO child_queue FROM jobs WHERE id = child AND state = 'waiting'
        FOR UPDATE;
        CONTINUE WHEN NOT FOUND;  -- released already, dead-lettered, or cleaned up
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM job_dependencies AS e
            LEFT JOIN jobs AS p ON p.id = e.depends_on
            LEFT JOIN dead_letters AS x ON x.id = e.depends_on
            WHERE e.job_id = child
              AND ((p.id IS NOT NULL AND p.state <> 'done') OR x.id IS NOT NULL)
        );
        UPDATE jobs SET state = 'ready', updated_at = NEW.updated_at WHERE id = child;
        -- Identical notifications of one transaction are delivered once.
        PERFORM pg_notify('persistent_queue', child_queue);
    END LOOP;
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_release_dependents
AFTER UPDATE OF state ON jobs
FOR EACH ROW
WHEN (NEW.state = 'done' AND OLD.state <> 'done')
EXECUTE FUNCTION jobs_release_dependents();

-- A done job that is cleaned up no longer needs its own edges.
CREATE FUNCTION jobs_forget_dependencies() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_dependencies WHERE job_id = OLD.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_forget_dependencies
AFTER DELETE ON jobs
FOR EACH ROW
WHEN (OLD.state = 'done' AND OLD.depends_on IS NOT NULL)
EXECUTE FUNCTION jobs_forget_dependencies();

-- Topics: publishing puts one copy of a job into every subscribed queue.
CREATE TABLE subscriptions (
    topic      text NOT NULL,
    queue      text NOT NULL,
    created_at double precision NOT NULL,
    PRIMARY KEY (topic, queue)
);

-- Recurring schedules. `next_run_at` is the next tick; firing a tick locks the row, enqueues
-- the job and moves `next_run_at` in one transaction, so concurrent schedulers cannot fire it
-- twice (the second waits for the row, then finds the tick moved).
CREATE TABLE schedules (
    name         text    PRIMARY KEY,
    queue        text    NOT NULL,
    payload      text    NOT NULL,
    headers      text,
    priority     integer NOT NULL DEFAULT 0,
    max_attempts integer CHECK (max_attempts IS NULL OR max_attempts >= 1),
    every        double precision CHECK (every IS NULL OR every > 0),
    cron         text,
    timezone     text    NOT NULL DEFAULT 'UTC',
    next_run_at  double precision NOT NULL,
    last_run_at  double precision,
    last_job_id  bigint,
    runs         bigint  NOT NULL DEFAULT 0,
    missed       bigint  NOT NULL DEFAULT 0,
    created_at   double precision NOT NULL,
    updated_at   double precision NOT NULL,
    CHECK ((every IS NULL) <> (cron IS NULL))
);
CREATE INDEX schedules_due ON schedules (next_run_at);
