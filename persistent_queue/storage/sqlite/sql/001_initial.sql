-- Schema version 1 of the SQLite backend.
-- The queue's state machine lives in `queries.sql`; this file only says what is stored.

CREATE TABLE queues (
    name               TEXT PRIMARY KEY,
    max_attempts       INTEGER NOT NULL CHECK (max_attempts >= 1),
    visibility_timeout REAL    NOT NULL CHECK (visibility_timeout > 0),
    max_size           INTEGER CHECK (max_size IS NULL OR max_size >= 1),
    paused             INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    created_at         REAL    NOT NULL,
    updated_at         REAL    NOT NULL
);

-- Live jobs: waiting, ready, leased and done (done rows stay until `cleanup`).
-- `available_at` is when the job may next be claimed: for a ready job its run time, for a
-- leased job the end of its lease, so one index range serves both new and expired work.
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    queue            TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('waiting', 'ready', 'leased', 'done')),
    priority         INTEGER NOT NULL DEFAULT 0,
    payload          TEXT    NOT NULL,
    headers          TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER CHECK (max_attempts IS NULL OR max_attempts >= 1),
    available_at     REAL    NOT NULL,
    lease_token      TEXT,
    lease_expires_at REAL,
    created_at       REAL    NOT NULL,
    updated_at       REAL    NOT NULL,
    finished_at      REAL,
    last_error       TEXT,
    CHECK ((state = 'leased') = (lease_token IS NOT NULL))
);

-- The claim: highest priority first, FIFO within a priority, only unfinished rows.
-- Done rows are outside this partial index, so claim cost does not grow with history.
CREATE INDEX jobs_claim ON jobs (queue, priority DESC, id) WHERE state IN ('ready', 'leased');

-- Listing, counting and cleaning by state.
CREATE INDEX jobs_queue_state ON jobs (queue, state);

-- Expired leases whose attempts are used up are found here and dead-lettered.
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'leased';

CREATE TABLE dead_letters (
    id           INTEGER PRIMARY KEY,          -- the job's own id, kept across redrives
    queue        TEXT    NOT NULL,
    priority     INTEGER NOT NULL,
    payload      TEXT    NOT NULL,
    headers      TEXT,
    attempts     INTEGER NOT NULL,
    max_attempts INTEGER,
    created_at   REAL    NOT NULL,
    reason       TEXT    NOT NULL,
    last_error   TEXT,
    dead_at      REAL    NOT NULL
);
CREATE INDEX dead_letters_queue ON dead_letters (queue, id);

-- A job's history: failures, expired leases, dead-lettering, redrives.
CREATE TABLE job_events (
    id      INTEGER PRIMARY KEY,
    job_id  INTEGER NOT NULL,
    queue   TEXT    NOT NULL,
    at      REAL    NOT NULL,
    event   TEXT    NOT NULL,
    attempt INTEGER,
    detail  TEXT
);
CREATE INDEX job_events_job ON job_events (job_id, id);
CREATE INDEX job_events_at ON job_events (at);

-- A lease that expired and is claimed again is recorded as a failed attempt.
CREATE TRIGGER jobs_lease_expired
AFTER UPDATE OF lease_token ON jobs
WHEN OLD.state = 'leased' AND NEW.state = 'leased'
BEGIN
    INSERT INTO job_events (job_id, queue, at, event, attempt, detail)
    VALUES (NEW.id, NEW.queue, NEW.updated_at, 'lease_expired', OLD.attempts,
            'lease expired before ack (consumer crashed, hung or too slow)');
END;

-- Producers and consumers register here so operators can see who is alive.
CREATE TABLE workers (
    id           TEXT    PRIMARY KEY,
    kind         TEXT    NOT NULL,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    queues       TEXT    NOT NULL DEFAULT '[]',
    state        TEXT    NOT NULL DEFAULT 'running',
    started_at   REAL    NOT NULL,
    heartbeat_at REAL    NOT NULL,
    stopped_at   REAL,
    processed    INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0
);

-- Small named values that must survive restarts (e.g. a producer's offset in its input file).
CREATE TABLE kv (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at REAL NOT NULL
);

-- Throughput over time is read from these timestamps.
CREATE INDEX jobs_created ON jobs (created_at);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state = 'done';
