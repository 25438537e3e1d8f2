-- Schema version 1 of the PostgreSQL backend, mirroring sql/sqlite/001_initial.sql.
-- The queue's state machine lives in `queries.sql`; this file only says what is stored.
-- Times are epoch seconds (double precision) passed in by the caller's clock; payloads and
-- headers hold the same JSON text SQLite stores.

CREATE TABLE queues (
    name               text PRIMARY KEY,
    max_attempts       integer NOT NULL CHECK (max_attempts >= 1),
    visibility_timeout double precision NOT NULL CHECK (visibility_timeout > 0),
    max_size           integer CHECK (max_size IS NULL OR max_size >= 1),
    paused             integer NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    created_at         double precision NOT NULL,
    updated_at         double precision NOT NULL
);

-- Live jobs: waiting, ready, leased and done (done rows stay until `cleanup`).
-- `available_at` is when the job may next be claimed: for a ready job its run time, for a
-- leased job the end of its lease, so one index range serves both new and expired work.
-- A dead-lettered job keeps its id in `dead_letters`; a redrive inserts it back with that id
-- (OVERRIDING SYSTEM VALUE), so the identity never hands out an id twice.
CREATE TABLE jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue            text    NOT NULL,
    state            text    NOT NULL CHECK (state IN ('waiting', 'ready', 'leased', 'done')),
    priority         integer NOT NULL DEFAULT 0,
    payload          text    NOT NULL,
    headers          text,
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer CHECK (max_attempts IS NULL OR max_attempts >= 1),
    available_at     double precision NOT NULL,
    lease_token      text,
    lease_expires_at double precision,
    created_at       double precision NOT NULL,
    updated_at       double precision NOT NULL,
    finished_at      double precision,
    last_error       text,
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
    id           bigint  PRIMARY KEY,          -- the job's own id, kept across redrives
    queue        text    NOT NULL,
    priority     integer NOT NULL,
    payload      text    NOT NULL,
    headers      text,
    attempts     integer NOT NULL,
    max_attempts integer,
    created_at   double precision NOT NULL,
    reason       text    NOT NULL,
    last_error   text,
    dead_at      double precision NOT NULL
);
CREATE INDEX dead_letters_queue ON dead_letters (queue, id);

-- A job's history: failures, expired leases, dead-lettering, redrives.
CREATE TABLE job_events (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id  bigint  NOT NULL,
    queue   text    NOT NULL,
    at      double precision NOT NULL,
    event   text    NOT NULL,
    attempt integer,
    detail  text
);
CREATE INDEX job_events_job ON job_events (job_id, id);
CREATE INDEX job_events_at ON job_events (at);

-- A lease that expired and is claimed again is recorded as a failed attempt.
CREATE FUNCTION jobs_lease_expired() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_events (job_id, queue, at, event, attempt, detail)
    VALUES (NEW.id, NEW.queue, NEW.updated_at, 'lease_expired', OLD.attempts,
            'lease expired before ack (consumer crashed, hung or too slow)');
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_lease_expired
AFTER UPDATE OF lease_token ON jobs
FOR EACH ROW
WHEN (OLD.state = 'leased' AND NEW.state = 'leased'
      AND OLD.lease_token IS DISTINCT FROM NEW.lease_token)
EXECUTE FUNCTION jobs_lease_expired();

-- Producers and consumers register here so operators can see who is alive.
CREATE TABLE workers (
    id           text    PRIMARY KEY,
    kind         text    NOT NULL,
    host         text    NOT NULL,
    pid          integer NOT NULL,
    queues       text    NOT NULL DEFAULT '[]',
    state        text    NOT NULL DEFAULT 'running',
    started_at   double precision NOT NULL,
    heartbeat_at double precision NOT NULL,
    stopped_at   double precision,
    processed    bigint  NOT NULL DEFAULT 0,
    failed       bigint  NOT NULL DEFAULT 0
);

-- Small named values that must survive restarts (e.g. a producer's offset in its input file).
CREATE TABLE kv (
    key        text PRIMARY KEY,
    value      text NOT NULL,
    updated_at double precision NOT NULL
);

-- Throughput over time is read from these timestamps.
CREATE INDEX jobs_created ON jobs (created_at);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state = 'done';
