-- Health checks and read-only facts about the database, for operators, probes and
-- health pages.

-- name: quick_check
-- O(N) structural check of every table and index (cheaper than integrity_check); one row
-- per problem found, or a single row 'ok'.
PRAGMA quick_check;

-- name: health_sqlite_version
SELECT sqlite_version();

-- name: health_settings
SELECT
    (SELECT page_size FROM pragma_page_size()) AS page_size,
    (SELECT page_count FROM pragma_page_count()) AS page_count,
    (SELECT freelist_count FROM pragma_freelist_count()) AS freelist_count,
    (SELECT journal_mode FROM pragma_journal_mode()) AS journal_mode,
    (SELECT synchronous FROM pragma_synchronous()) AS synchronous,
    (SELECT auto_vacuum FROM pragma_auto_vacuum()) AS auto_vacuum,
    (SELECT timeout FROM pragma_busy_timeout()) AS busy_timeout_ms,
    (SELECT user_version FROM pragma_user_version()) AS user_version;

-- name: health_integrity_check
PRAGMA integrity_check;
