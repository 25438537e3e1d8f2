-- Workflows: dependencies, topics, idempotent enqueue, bounded queues and schedules.
-- None of these run on the default enqueue path (no key, no dependencies, unbounded queue).

-- name: count_occupied
-- Jobs that count against a bounded queue's max_size (served by jobs_claim).
SELECT count(*) AS n FROM jobs WHERE queue = :queue AND state IN ('ready', 'leased');

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
                  available_at, created_at, updated_at, last_error, dedup_key, depends_on,
                  timeout, group_key)
SELECT id, queue, 'waiting', priority, payload, headers, 0, max_attempts,
       :now, created_at, :now, last_error, dedup_key, depends_on, timeout,
       COALESCE(group_key,
                (SELECT '' FROM queues AS g WHERE g.name = dead_letters.queue AND g.grouped = 1))
FROM dead_letters WHERE id = :id;

-- name: subscribers
SELECT queue FROM subscriptions WHERE topic = :topic ORDER BY queue;

-- name: insert_dependencies
-- Every edge of a new job in one statement (:parents is a JSON array of ids).
INSERT OR IGNORE INTO job_dependencies (job_id, depends_on)
SELECT :job_id, value FROM json_each(:parents);

-- name: lock_live_parents
-- The states of the live jobs a new job depends on (:ids a JSON array). SQLite's write
-- lock, held by the enqueue, already keeps them from changing: no row locks.
SELECT id, state FROM jobs WHERE id IN (SELECT value FROM json_each(:ids)) ORDER BY id;

-- name: lock_dead_parents
-- The dead-lettered ones.
SELECT id FROM dead_letters WHERE id IN (SELECT value FROM json_each(:ids)) ORDER BY id;

-- name: lock_parents_of
-- Nothing to lock on SQLite (the write lock holds every row): no rows.
SELECT :id AS id WHERE 0;

-- name: lock_schedule
-- SQLite: the write lock already serialises declarations; a plain read.
SELECT * FROM schedules WHERE name = :name;

-- name: lock_due_schedule
-- SQLite: the write lock already serialises schedulers; a plain read.
SELECT * FROM schedules WHERE name = :name;

