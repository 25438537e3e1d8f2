-- Reading a database file that no Queue has opened: a backup's source or copy, and the
-- target of a restore (persistent_queue/backup.py).

-- name: backup_tables
-- The tables every persistent-queue database has (from migration 001 on).
SELECT count(*) AS n FROM sqlite_master
WHERE type = 'table' AND name IN ('jobs', 'queues', 'workers', 'dead_letters');

-- name: backup_counts
SELECT (SELECT count(*) FROM jobs) AS jobs, (SELECT count(*) FROM dead_letters) AS dead_letters;

-- name: backup_live_workers
-- Processes that say they run and gave a heartbeat since :since.
SELECT id, kind, host, pid, heartbeat_at FROM workers
WHERE state = 'running' AND heartbeat_at >= :since ORDER BY id;
