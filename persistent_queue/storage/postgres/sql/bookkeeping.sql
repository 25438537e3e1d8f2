-- Bookkeeping of the PostgreSQL schema (which numbered migrations ran, under one lock) and
-- the session statements of every connection.

-- name: schema_migrations_exists
SELECT to_regclass('schema_migrations') IS NOT NULL AS present;

-- name: migration_lock
-- Held until the migrating transaction ends: a second process waits, then finds the work done.
SELECT pg_advisory_xact_lock(%(key)s);

-- name: create_schema_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at double precision NOT NULL
);

-- name: schema_version
SELECT COALESCE(max(version), 0) AS version FROM schema_migrations;

-- name: record_migration
INSERT INTO schema_migrations (version, name, applied_at)
VALUES (%(version)s, %(name)s, extract(epoch FROM clock_timestamp()));

-- name: session_settings
-- Every new connection: durability and how long to wait for a row lock (busy_timeout).
SELECT set_config('synchronous_commit', %(synchronous)s, false),
       set_config('lock_timeout', %(lock_timeout)s, false);

-- name: listen
-- A thread's connection starts receiving the wake-ups of `notify` (see queries.sql).
LISTEN persistent_queue;

-- name: snapshot
-- First statement of a read transaction whose queries must agree with each other (stats).
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY;

-- name: vacuum
-- Outside any transaction: returns dead rows' space for reuse and refreshes statistics.
VACUUM (ANALYZE) jobs, job_events, dead_letters;
