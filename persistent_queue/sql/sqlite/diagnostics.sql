-- Read-only checks behind `pq doctor` and the crash drill's report
-- (`quick_check` is in health.sql).

-- name: integrity_check
PRAGMA integrity_check;

-- name: journal_mode
PRAGMA journal_mode;

-- name: page_size
PRAGMA page_size;

-- name: page_count
PRAGMA page_count;

-- name: freelist_count
PRAGMA freelist_count;
