-- Statements both dialects run (workflows), written once with :name placeholders.

-- name: find_dedup
-- The newest job of the queue holding the key (served by jobs_dedup).
SELECT *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = jobs.queue))
    AS effective_max_attempts,
    COALESCE(timeout, (SELECT q.timeout FROM queues q WHERE q.name = jobs.queue))
    AS effective_timeout
FROM jobs
WHERE queue = :queue AND dedup_key = :key
ORDER BY id DESC
LIMIT 1;

-- name: insert_workflow_job
-- A job without a group joins the group '' if its queue has group limits (read here, by the
-- insert itself: see flow_hold_inserts).
INSERT INTO jobs (queue, state, priority, payload, headers, attempts, max_attempts,
                  available_at, created_at, updated_at, dedup_key, depends_on, timeout,
                  group_key)
VALUES (:queue, :state, :priority, :payload, :headers, 0, :max_attempts,
        :available_at, :now, :now, :dedup_key, :depends_on, :timeout,
        COALESCE(:group_key, (SELECT '' FROM queues AS g WHERE g.name = :queue AND g.grouped = 1)))
RETURNING *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = :queue))
    AS effective_max_attempts,
    COALESCE(timeout, (SELECT q.timeout FROM queues q WHERE q.name = :queue))
    AS effective_timeout;

-- name: make_waiting
UPDATE jobs SET state = 'waiting', updated_at = :now WHERE id = :id AND state = 'ready';

-- name: count_dedup_hit
UPDATE queues SET dedup_hits = dedup_hits + :n WHERE name = :queue;

-- name: count_rejected_full
UPDATE queues SET rejected_full = rejected_full + 1 WHERE name = :queue;

-- name: workflow_counters
SELECT name, dedup_hits, rejected_full FROM queues;

-- name: subscribe
INSERT INTO subscriptions (topic, queue, created_at) VALUES (:topic, :queue, :now)
ON CONFLICT (topic, queue) DO NOTHING;

-- name: unsubscribe
DELETE FROM subscriptions WHERE topic = :topic AND queue = :queue;

-- name: list_subscriptions
SELECT topic, queue, created_at FROM subscriptions ORDER BY topic, queue;

-- name: delete_queue_subscriptions
-- Deleting a queue ends its subscriptions (publishing would recreate it).
DELETE FROM subscriptions WHERE queue = :name RETURNING topic;

-- name: get_schedule
SELECT * FROM schedules WHERE name = :name;

-- name: list_schedules
SELECT * FROM schedules ORDER BY name;

-- name: delete_schedule
DELETE FROM schedules WHERE name = :name;

-- name: delete_queue_schedules
-- Deleting a queue deletes the schedules that target it (a tick would recreate it).
DELETE FROM schedules WHERE queue = :name RETURNING name;

-- name: due_schedules
-- Names of schedules whose tick has come (served by schedules_due); a finished one has none.
SELECT name FROM schedules
WHERE next_run_at <= :now AND finished_at IS NULL
ORDER BY next_run_at, name;

-- name: advance_schedule
-- Compare-and-set on the tick just fired: a second scheduler that fired it finds no row.
-- After the last tick of a cron that has run out, `next_run_at` stays on it and
-- `finished_at` is set: the schedule is finished.
UPDATE schedules
SET next_run_at = :next_run_at, last_run_at = :now, last_job_id = :job_id,
    runs = runs + 1, missed = missed + :missed, updated_at = :now,
    finished_at = :finished_at
WHERE name = :name AND next_run_at = :tick AND finished_at IS NULL;

-- name: upsert_schedule
INSERT INTO schedules (name, queue, payload, headers, priority, max_attempts, every, cron,
                       timezone, next_run_at, created_at, updated_at)
VALUES (:name, :queue, :payload, :headers, :priority, :max_attempts,
        :every, :cron, :timezone, :next_run_at, :now, :now)
ON CONFLICT (name) DO UPDATE SET
    queue = excluded.queue, payload = excluded.payload, headers = excluded.headers,
    priority = excluded.priority, max_attempts = excluded.max_attempts,
    every = excluded.every, cron = excluded.cron, timezone = excluded.timezone,
    next_run_at = excluded.next_run_at, updated_at = excluded.updated_at,
    finished_at = NULL
RETURNING *;

-- name: insert_schedule
-- A new schedule; no row when another transaction created it first (after waiting for it).
INSERT INTO schedules (name, queue, payload, headers, priority, max_attempts, every, cron,
                       timezone, next_run_at, created_at, updated_at)
VALUES (:name, :queue, :payload, :headers, :priority, :max_attempts,
        :every, :cron, :timezone, :next_run_at, :now, :now)
ON CONFLICT (name) DO NOTHING
RETURNING *;

-- name: next_schedule_at
SELECT min(next_run_at) AS next_run_at FROM schedules WHERE finished_at IS NULL;

-- name: forget_cancelled_parents
-- A redriven job no longer waits for a parent that was cancelled (the redrive runs it
-- without that parent, as it would after the parent was deleted or cleaned up).
DELETE FROM job_dependencies
WHERE job_id = :id
  AND EXISTS (SELECT 1 FROM jobs AS p
              WHERE p.id = job_dependencies.depends_on AND p.state = 'cancelled');
