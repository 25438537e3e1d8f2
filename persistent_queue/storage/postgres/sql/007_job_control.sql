-- Schema version 7 of the PostgreSQL backend: control of running jobs (timeouts,
-- cancellation, progress) and who ran each attempt for how long, mirroring
-- sqlite/sql/007_job_control.sql (where `jobs` is rebuilt: SQLite cannot change a CHECK in
-- place; PostgreSQL swaps the constraint, checking the existing rows once).
--
-- `jobs.state` gains 'cancelled', a terminal state like 'done' (not a dead letter). New
-- columns of a job: timeout (seconds an attempt may run; NULL: its queue's), started_at and
-- claimed_by (the current or last attempt), progress and progress_message (written by the
-- running handler, cleared by each claim), cancel_requested_at and cancel_reason.

ALTER TABLE jobs
    DROP CONSTRAINT jobs_state_check,
    ADD CONSTRAINT jobs_state_check
        CHECK (state IN ('waiting', 'ready', 'leased', 'done', 'cancelled')),
    ADD COLUMN timeout double precision CHECK (timeout IS NULL OR timeout > 0),
    ADD COLUMN started_at double precision,
    ADD COLUMN claimed_by text,
    ADD COLUMN progress double precision
        CHECK (progress IS NULL OR (progress >= 0 AND progress <= 1)),
    ADD COLUMN progress_message text,
    ADD COLUMN cancel_requested_at double precision,
    ADD COLUMN cancel_reason text;

-- Cancelled jobs, as jobs_done holds done ones: counted, listed and cleaned up by
-- (queue, finished_at) without reading the table's other rows.
CREATE INDEX jobs_cancelled ON jobs (queue, finished_at) WHERE state = 'cancelled';

-- A queue's default run-time limit for its jobs (NULL: none).
ALTER TABLE queues ADD COLUMN timeout double precision CHECK (timeout IS NULL OR timeout > 0);

-- A 'failed' (and 'lease_expired', 'cancelled') event names the worker that ran the attempt
-- and for how long: its claim is `at - run_time`. No row is written per claim.
ALTER TABLE job_events ADD COLUMN worker text, ADD COLUMN run_time double precision;

-- What a redrive keeps (the job's own timeout), and who ran the last attempt and when.
ALTER TABLE dead_letters
    ADD COLUMN timeout double precision,
    ADD COLUMN started_at double precision,
    ADD COLUMN claimed_by text;

-- A lease that expired and is claimed again: the attempt it ended, with the worker that had
-- it and how long after its claim the expiry was noticed (so its claim time is known).
CREATE OR REPLACE FUNCTION jobs_lease_expired() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_events (job_id, queue, at, event, attempt, detail, worker, run_time)
    VALUES (NEW.id, NEW.queue, NEW.updated_at, 'lease_expired', OLD.attempts,
            'lease expired before ack (consumer crashed, hung or too slow)',
            OLD.claimed_by, NEW.updated_at - OLD.started_at);
    RETURN NULL;
END;
$$;

-- A finished job (done or cancelled) that is cleaned up no longer needs its own edges.
DROP TRIGGER jobs_forget_dependencies ON jobs;
CREATE TRIGGER jobs_forget_dependencies
AFTER DELETE ON jobs
FOR EACH ROW
WHEN (OLD.state IN ('done', 'cancelled') AND OLD.depends_on IS NOT NULL)
EXECUTE FUNCTION jobs_forget_dependencies();
