-- Health checks and read-only facts about the database, for operators, probes and
-- health pages (the keys mirror sql/sqlite/health.sql where PostgreSQL has a counterpart).

-- name: quick_check
-- Cheap consistency checks of the queue's invariants; one row per problem found.
SELECT 'job ' || id || ' is leased without a lease token or expiry' AS problem
FROM jobs WHERE state = 'leased' AND (lease_token IS NULL OR lease_expires_at IS NULL)
UNION ALL
SELECT 'job ' || id || ' is ' || state || ' but holds a lease token'
FROM jobs WHERE state != 'leased' AND lease_token IS NOT NULL
  -- While the table's CHECK ((state = 'leased') = (lease_token IS NOT NULL)) is in place and
  -- validated there are no such rows: then this part reads none (a one-time filter), rather
  -- than every done row.
  AND NOT EXISTS (
      SELECT 1 FROM pg_constraint
      WHERE conrelid = 'jobs'::regclass AND contype = 'c' AND convalidated
        AND pg_get_constraintdef(oid)
            = 'CHECK (((state = ''leased''::text) = (lease_token IS NOT NULL)))')
UNION ALL
SELECT 'job ' || j.id || ' is both live and dead-lettered'
FROM jobs AS j JOIN dead_letters AS d ON d.id = j.id
UNION ALL
SELECT 'job ids run past the identity sequence (next ' || last_value || ')'
FROM pg_sequences
WHERE schemaname = current_schema() AND sequencename = 'jobs_id_seq'
  AND last_value < (SELECT max(id) FROM dead_letters)
UNION ALL
SELECT 'index ' || c.relname || ' is invalid (a failed concurrent build): reindex it'
FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND NOT i.indisvalid;

-- name: health_server_version
SELECT current_setting('server_version') AS server_version;

-- name: health_settings
SELECT
    current_database() AS database,
    pg_database_size(current_database()) AS database_bytes,
    current_setting('synchronous_commit') AS synchronous,
    current_setting('fsync') AS fsync,
    current_setting('lock_timeout') AS lock_timeout,
    current_setting('max_connections')::integer AS max_connections,
    (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database())
        AS connections,
    current_setting('block_size')::integer AS page_size,
    (SELECT COALESCE(max(version), 0) FROM schema_migrations) AS user_version;
