-- Workflows: dependencies, topics, idempotent enqueue, bounded queues and schedules.
-- None of these run on the default enqueue path (no key, no dependencies, unbounded queue).

-- name: count_occupied
-- Jobs that count against a bounded queue's max_size (served by jobs_claim).
SELECT count(*) FROM jobs WHERE queue = :queue AND state IN ('ready', 'leased');

-- name: find_dedup
-- The newest job of the queue holding the key (served by jobs_dedup).
SELECT *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = jobs.queue))
    AS effective_max_attempts
FROM jobs
WHERE queue = :queue AND dedup_key = :key
ORDER BY id DESC
LIMIT 1;

-- name: insert_workflow_job
INSERT INTO jobs (queue, state, priority, payload, headers, attempts, max_attempts,
                  available_at, created_at, updated_at, dedup_key, depends_on)
VALUES (:queue, :state, :priority, :payload, :headers, 0, :max_attempts,
        :available_at, :now, :now, :dedup_key, :depends_on)
RETURNING *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = :queue))
    AS effective_max_attempts;

-- name: insert_dependency
INSERT OR IGNORE INTO job_dependencies (job_id, depends_on) VALUES (:job_id, :depends_on);

-- name: job_state
SELECT state FROM jobs WHERE id = :id
UNION ALL
SELECT 'dead' FROM dead_letters WHERE id = :id;

-- name: waiting_dependents
-- Dependents to dead-letter when a job dies (served by job_dependencies_parent).
SELECT j.id, j.queue, j.attempts
FROM job_dependencies AS d JOIN jobs AS j ON j.id = d.job_id
WHERE d.depends_on = :id AND j.state = 'waiting'
ORDER BY j.id;

-- name: dead_dependents
-- Dependents that died with a job and come back when it is redriven.
SELECT x.id, x.queue
FROM job_dependencies AS d JOIN dead_letters AS x ON x.id = d.job_id
WHERE d.depends_on = :id AND x.reason = 'dependency failed'
ORDER BY x.id;

-- name: unmet_dependencies
-- How many of a job's dependencies are not done yet, and how many of those are dead.
SELECT count(*) AS unmet, COALESCE(sum(x.id IS NOT NULL), 0) AS dead
FROM job_dependencies AS e
LEFT JOIN jobs AS p ON p.id = e.depends_on
LEFT JOIN dead_letters AS x ON x.id = e.depends_on
WHERE e.job_id = :id
  AND ((p.id IS NOT NULL AND p.state != 'done') OR x.id IS NOT NULL);

-- name: restore_waiting
INSERT INTO jobs (id, queue, state, priority, payload, headers, attempts, max_attempts,
                  available_at, created_at, updated_at, last_error, dedup_key, depends_on)
SELECT id, queue, 'waiting', priority, payload, headers, 0, max_attempts,
       :now, created_at, :now, last_error, dedup_key, depends_on
FROM dead_letters WHERE id = :id;

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

-- name: subscribers
SELECT queue FROM subscriptions WHERE topic = :topic ORDER BY queue;

-- name: list_subscriptions
SELECT topic, queue, created_at FROM subscriptions ORDER BY topic, queue;

-- name: delete_queue_subscriptions
-- Deleting a queue ends its subscriptions (publishing would recreate it).
DELETE FROM subscriptions WHERE queue = :name RETURNING topic;

-- name: upsert_schedule
INSERT INTO schedules (name, queue, payload, headers, priority, max_attempts, every, cron,
                       timezone, next_run_at, created_at, updated_at)
VALUES (:name, :queue, :payload, :headers, :priority, :max_attempts, :every, :cron,
        :timezone, :next_run_at, :now, :now)
ON CONFLICT (name) DO UPDATE SET
    queue = excluded.queue, payload = excluded.payload, headers = excluded.headers,
    priority = excluded.priority, max_attempts = excluded.max_attempts,
    every = excluded.every, cron = excluded.cron, timezone = excluded.timezone,
    next_run_at = excluded.next_run_at, updated_at = excluded.updated_at,
    finished_at = NULL;

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

-- name: next_schedule_at
SELECT min(next_run_at) FROM schedules WHERE finished_at IS NULL;

-- name: advance_schedule
-- Compare-and-set on the tick just fired: a second scheduler that fired it finds no row.
-- After the last tick of a cron that has run out, `next_run_at` stays on it and
-- `finished_at` is set: the schedule is finished.
UPDATE schedules
SET next_run_at = :next_run_at, last_run_at = :now, last_job_id = :job_id,
    runs = runs + 1, missed = missed + :missed, updated_at = :now,
    finished_at = :finished_at
WHERE name = :name AND next_run_at = :tick AND finished_at IS NULL;
