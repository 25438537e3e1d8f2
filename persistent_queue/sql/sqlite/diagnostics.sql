-- Read-only checks behind `pq doctor` and the crash drill's report.

-- name: integrity_check
PRAGMA integrity_check;

-- name: quick_check
PRAGMA quick_check;

-- name: journal_mode
PRAGMA journal_mode;

-- name: page_size
PRAGMA page_size;

-- name: page_count
PRAGMA page_count;

-- name: freelist_count
PRAGMA freelist_count;
