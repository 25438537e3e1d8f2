-- The SQLite schema that migrations 001..009 build, in one file (a snapshot: never run by
-- the library). tests/unit/test_schema_snapshots.py checks that the migrations, applied in
-- order to an empty database, give exactly this schema; regenerate it with a new migration.

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
, dedup_key TEXT, depends_on TEXT, timeout REAL, started_at REAL, claimed_by TEXT,
    group_key TEXT);

CREATE TABLE flow_groups (
    queue     TEXT    NOT NULL,
    group_key TEXT    NOT NULL,
    turn      INTEGER NOT NULL,
    tat       REAL,
    PRIMARY KEY (queue, group_key)
) WITHOUT ROWID;

CREATE TABLE job_dependencies (
    job_id     INTEGER NOT NULL,
    depends_on INTEGER NOT NULL,
    PRIMARY KEY (job_id, depends_on)
) WITHOUT ROWID;

CREATE TABLE job_events (
    id      INTEGER PRIMARY KEY,
    job_id  INTEGER NOT NULL,
    queue   TEXT    NOT NULL,
    at      REAL    NOT NULL,
    event   TEXT    NOT NULL,
    attempt INTEGER,
    detail  TEXT
, worker TEXT, run_time REAL);

CREATE TABLE "jobs" (
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
    cancel_reason       TEXT, group_key TEXT,
    CHECK ((state = 'leased') = (lease_token IS NOT NULL))
);

CREATE TABLE kv (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE queues (
    name               TEXT PRIMARY KEY,
    max_attempts       INTEGER NOT NULL CHECK (max_attempts >= 1),
    visibility_timeout REAL    NOT NULL CHECK (visibility_timeout > 0),
    max_size           INTEGER CHECK (max_size IS NULL OR max_size >= 1),
    paused             INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    created_at         REAL    NOT NULL,
    updated_at         REAL    NOT NULL
, dedup_hits INTEGER NOT NULL DEFAULT 0, rejected_full INTEGER NOT NULL DEFAULT 0, timeout REAL CHECK (timeout IS NULL OR timeout > 0),
    concurrency INTEGER CHECK (concurrency IS NULL OR concurrency >= 1),
    rate_count INTEGER CHECK (rate_count IS NULL OR rate_count >= 1),
    rate_period REAL CHECK (rate_period IS NULL OR rate_period > 0),
    group_concurrency INTEGER CHECK (group_concurrency IS NULL OR group_concurrency >= 1),
    group_rate_count INTEGER CHECK (group_rate_count IS NULL OR group_rate_count >= 1),
    group_rate_period REAL CHECK (group_rate_period IS NULL OR group_rate_period > 0),
    limited INTEGER NOT NULL DEFAULT 0 CHECK (limited IN (0, 1)),
    grouped INTEGER NOT NULL DEFAULT 0 CHECK (grouped IN (0, 1)),
    rate_tat REAL, throttled INTEGER NOT NULL DEFAULT 0,
    alert_depth INTEGER CHECK (alert_depth IS NULL OR alert_depth >= 1),
    alert_oldest_age REAL CHECK (alert_oldest_age IS NULL OR alert_oldest_age > 0),
    alert_failure_rate REAL
        CHECK (alert_failure_rate IS NULL OR (alert_failure_rate > 0 AND alert_failure_rate <= 1)),
    alert_dead_letters INTEGER CHECK (alert_dead_letters IS NULL OR alert_dead_letters >= 1));

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
    updated_at   REAL    NOT NULL, finished_at REAL,
    CHECK ((every IS NULL) != (cron IS NULL))
);

CREATE TABLE subscriptions (
    topic      TEXT NOT NULL,
    queue      TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (topic, queue)
) WITHOUT ROWID;

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

CREATE INDEX dead_letters_queue ON dead_letters (queue, id);

CREATE INDEX job_dependencies_parent ON job_dependencies (depends_on, job_id);

CREATE INDEX job_events_at ON job_events (at);

CREATE INDEX job_events_job ON job_events (job_id, id);

CREATE INDEX jobs_cancelled ON jobs (queue, finished_at, state) WHERE state = 'cancelled';

CREATE INDEX jobs_claim ON jobs (queue, priority DESC, id) WHERE state IN ('ready', 'leased');

CREATE INDEX jobs_dedup ON jobs (queue, dedup_key, id) WHERE dedup_key IS NOT NULL;

CREATE INDEX jobs_done ON jobs (queue, finished_at, state) WHERE state = 'done';

CREATE INDEX jobs_groups ON jobs (queue, group_key, id)
    WHERE group_key IS NOT NULL AND state IN ('ready', 'leased');

CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'leased';

CREATE INDEX jobs_waiting ON jobs (queue) WHERE state = 'waiting';

CREATE INDEX schedules_due ON schedules (next_run_at);

CREATE TRIGGER jobs_forget_dependencies
AFTER DELETE ON jobs
WHEN OLD.state IN ('done', 'cancelled') AND OLD.depends_on IS NOT NULL
BEGIN
    DELETE FROM job_dependencies WHERE job_id = OLD.id;
END;

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
