-- Bookkeeping of the PostgreSQL schema: which numbered migrations ran, under one lock.

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
