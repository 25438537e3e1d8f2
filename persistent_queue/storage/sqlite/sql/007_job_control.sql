-- Schema version 7: control of running jobs (timeouts, cancellation, progress) and who ran
-- each attempt for how long.
--
-- `jobs.state` gains 'cancelled', a terminal state like 'done' (not a dead letter). SQLite
-- cannot change a CHECK constraint in place, so `jobs` is rebuilt: the documented general
-- procedure (create the new table, copy the rows, drop the old one, rename, recreate the
-- indexes and triggers), all inside the migration's one transaction. Chosen over editing
-- sqlite_master under `PRAGMA writable_schema` because that edit is refused by builds in
-- defensive mode (SQLITE_DBCONFIG_DEFENSIVE), needs a hand-bumped schema cookie, and a
-- mistake in it corrupts the file; the rebuild is plain SQL, checked by SQLite itself as it
-- runs. Its cost is one copy of the table, once, at the first open by this version, holding
-- the write lock (measured: 400,000 done jobs of 200-byte payloads in 1.7 s on a 2-core
-- machine; the WAL grows by the table's size until the next checkpoint): `cleanup` before
-- upgrading shortens it.
-- AUTOINCREMENT's high-water mark is carried over (sqlite_sequence), so an id that was
-- handed out and then cleaned up or dead-lettered is never handed out again.
--
-- New columns of a job:
--   timeout             seconds an attempt may run before it is stopped (NULL: its queue's)
--   started_at          when the current (or last) attempt was claimed
--   claimed_by          the worker that claimed it
--   progress            0..1, written by the running handler (cleared by each claim)
--   progress_message    the handler's words with it
--   cancel_requested_at when cancellation was asked for (of a leased job: the worker stops it)
--   cancel_reason       the operator's reason

-- A queue's default run-time limit for its jobs (NULL: none).
ALTER TABLE queues ADD COLUMN timeout REAL CHECK (timeout IS NULL OR timeout > 0);

-- A 'failed' (and 'lease_expired', 'cancelled') event names the worker that ran the attempt
-- and for how long: its claim is `at - run_time`. No row is written per claim.
ALTER TABLE job_events ADD COLUMN worker TEXT;
ALTER TABLE job_events ADD COLUMN run_time REAL;

-- What a redrive keeps (the job's own timeout), and who ran the last attempt and when.
ALTER TABLE dead_letters ADD COLUMN timeout REAL;
ALTER TABLE dead_letters ADD COLUMN started_at REAL;
ALTER TABLE dead_letters ADD COLUMN claimed_by TEXT;

CREATE TABLE jobs_v7 (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    queue               TEXT    NOT NULL,
    state               TEXT    NOT NULL
                        CHECK (state IN ('waiting', 'ready', 'leased', 'done', 'cancelled')),
    priority            INTEGER NOT NULL DEFAULT 0,
    payload             TEXT    NOT NULL,
    headers             TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts        INTEGER CHECK (max_attempts IS NULL OR max_attempts >= 1),
    available_at        REAL    NOT NULL,
    lease_token         TEXT,
    lease_expires_at    REAL,
    created_at          REAL    NOT NULL,
    updated_at          REAL    NOT NULL,
    finished_at         REAL,
    last_error          TEXT,
    dedup_key           TEXT,
    depends_on          TEXT,
    result              TEXT,
    timeout             REAL    CHECK (timeout IS NULL OR timeout > 0),
    started_at          REAL,
    claimed_by          TEXT,
    progress            REAL    CHECK (progress IS NULL OR (progress >= 0 AND progress <= 1)),
    progress_message    TEXT,
    cancel_requested_at REAL,
    cancel_reason       TEXT,
    CHECK ((state = 'leased') = (lease_token IS NOT NULL))
);

-- The high-water mark first: copying rows with their own ids only raises it.
INSERT INTO sqlite_sequence (name, seq)
SELECT 'jobs_v7', seq FROM sqlite_sequence WHERE name = 'jobs';

INSERT INTO jobs_v7 (id, queue, state, priority, payload, headers, attempts, max_attempts,
                     available_at, lease_token, lease_expires_at, created_at, updated_at,
                     finished_at, last_error, dedup_key, depends_on, result)
SELECT id, queue, state, priority, payload, headers, attempts, max_attempts,
       available_at, lease_token, lease_expires_at, created_at, updated_at,
       finished_at, last_error, dedup_key, depends_on, result
FROM jobs ORDER BY id;

-- Dropping `jobs` drops its indexes, its triggers and its sqlite_sequence row.
DROP TABLE jobs;
ALTER TABLE jobs_v7 RENAME TO jobs;

CREATE INDEX jobs_claim ON jobs (queue, priority DESC, id) WHERE state IN ('ready', 'leased');
CREATE INDEX jobs_dedup ON jobs (queue, dedup_key, id) WHERE dedup_key IS NOT NULL;
CREATE INDEX jobs_done ON jobs (queue, finished_at, state) WHERE state = 'done';
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'leased';
CREATE INDEX jobs_waiting ON jobs (queue) WHERE state = 'waiting';
-- Cancelled jobs, as jobs_done holds done ones: counted (the index alone), listed and
-- cleaned up by (queue, finished_at) without reading the table's other rows.
CREATE INDEX jobs_cancelled ON jobs (queue, finished_at, state) WHERE state = 'cancelled';

-- A finished job (done or cancelled) that is cleaned up no longer needs its own edges.
CREATE TRIGGER jobs_forget_dependencies
AFTER DELETE ON jobs
WHEN OLD.state IN ('done', 'cancelled') AND OLD.depends_on IS NOT NULL
BEGIN
    DELETE FROM job_dependencies WHERE job_id = OLD.id;
END;

-- A lease that expired and is claimed again: the attempt it ended, with the worker that had
-- it and how long after its claim the expiry was noticed (so its claim time is known).
CREATE TRIGGER jobs_lease_expired
AFTER UPDATE OF attempts ON jobs
WHEN OLD.state = 'leased' AND NEW.state = 'leased'
BEGIN
    INSERT INTO job_events (job_id, queue, at, event, attempt, detail, worker, run_time)
    VALUES (NEW.id, NEW.queue, NEW.updated_at, 'lease_expired', OLD.attempts,
            'lease expired before ack (consumer crashed, hung or too slow)',
            OLD.claimed_by, NEW.updated_at - OLD.started_at);
END;

CREATE TRIGGER jobs_release_dependents
AFTER UPDATE OF finished_at ON jobs
WHEN NEW.state = 'done' AND OLD.state != 'done'
  AND EXISTS (SELECT 1 FROM job_dependencies AS d WHERE d.depends_on = NEW.id)
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
