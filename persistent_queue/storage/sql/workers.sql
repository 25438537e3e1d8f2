-- Statements both dialects run (workers), written once with :name placeholders.

-- name: register_worker
INSERT INTO workers (id, kind, host, pid, queues, state, started_at, heartbeat_at)
VALUES (:id, :kind, :host, :pid, :queues, 'running', :now, :now)
ON CONFLICT (id) DO UPDATE SET
    kind = excluded.kind, host = excluded.host, pid = excluded.pid, queues = excluded.queues,
    state = 'running', started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
    stopped_at = NULL;

-- name: heartbeat_worker
UPDATE workers
SET heartbeat_at = :now, state = 'running',
    processed = processed + :processed, failed = failed + :failed
WHERE id = :id;

-- name: stop_worker
UPDATE workers SET state = 'stopped', stopped_at = :now, heartbeat_at = :now WHERE id = :id;

-- name: list_workers
-- A running worker whose heartbeat is older than :before is lost: read so, never stored (its
-- next heartbeat, if it was only slow, makes it running again).
SELECT id, kind, host, pid, queues,
       CASE WHEN state = 'running' AND heartbeat_at < :before THEN 'lost' ELSE state END
           AS state,
       started_at, heartbeat_at, stopped_at, processed, failed
FROM workers ORDER BY kind, started_at;

-- name: prune_workers
-- Stopped and lost workers (running, silent since :lost_before) last heard of before :before.
DELETE FROM workers
WHERE heartbeat_at < :before AND (state != 'running' OR heartbeat_at < :lost_before);

-- name: kv_get
SELECT value FROM kv WHERE key = :key;

-- name: kv_set
INSERT INTO kv (key, value, updated_at) VALUES (:key, :value, :now)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at;


-- name: kv_insert_absent
-- A compare-and-set expecting no value: 0 rows when the key is there (PostgreSQL: also when
-- another transaction inserted it and commits while this one waits).
INSERT INTO kv (key, value, updated_at) VALUES (:key, :value, :now)
ON CONFLICT (key) DO NOTHING;

-- name: kv_compare_and_set
-- 0 rows when the value is no longer :expected (value is NOT NULL, so `=` is exact). On
-- PostgreSQL the UPDATE waits for a concurrent writer's row lock and, under READ COMMITTED,
-- evaluates the WHERE again on the row as that writer committed it.
UPDATE kv SET value = :value, updated_at = :now WHERE key = :key AND value = :expected;
