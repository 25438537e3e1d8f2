-- Workflows: dependencies, topics, idempotent enqueue, bounded queues and schedules.
-- None of these run on the default enqueue path (no key, no dependencies, unbounded queue).
-- The same statements as sql/sqlite/workflows.sql, plus the row locks that stand in for
-- SQLite's single writer (see postgres_workflows.py for the order they are taken; the queue's
-- row is locked by `lock_queue` in queries.sql).

-- name: count_occupied
-- Jobs that count against a bounded queue's max_size (served by jobs_claim).
SELECT count(*) AS n FROM jobs WHERE queue = %(queue)s AND state IN ('ready', 'leased');

-- name: insert_dependencies
-- Every edge of a new job in one statement.
INSERT INTO job_dependencies (job_id, depends_on)
SELECT %(job_id)s, parent FROM unnest(%(parents)s::bigint[]) AS parent
ON CONFLICT DO NOTHING;

-- name: lock_live_parents
-- The states of the live jobs a new job depends on, share-locked in id order: an ack or a
-- dead-lettering of one of them waits for this enqueue to commit (and then sees its edges).
SELECT id, state FROM jobs WHERE id = ANY(%(ids)s::bigint[]) ORDER BY id FOR SHARE;

-- name: lock_dead_parents
-- The dead-lettered ones, share-locked so a redrive of them waits for this enqueue.
SELECT id FROM dead_letters WHERE id = ANY(%(ids)s::bigint[]) ORDER BY id FOR SHARE;

-- name: lock_parents_of
-- A redriven job's live dependencies, share-locked before their states are read.
SELECT p.id FROM job_dependencies AS e JOIN jobs AS p ON p.id = e.depends_on
WHERE e.job_id = %(id)s
ORDER BY p.id
FOR SHARE OF p;

-- name: waiting_dependents
-- Dependents to dead-letter when a job dies (served by job_dependencies_parent), locked so
-- a concurrent change of one of them is seen after it commits.
SELECT j.id, j.queue, j.attempts
FROM job_dependencies AS d JOIN jobs AS j ON j.id = d.job_id
WHERE d.depends_on = %(id)s AND j.state = 'waiting'
ORDER BY j.id
FOR UPDATE OF j;

-- name: dead_dependents
-- Dependents that died with a job and come back when it is redriven.
SELECT x.id, x.queue
FROM job_dependencies AS d JOIN dead_letters AS x ON x.id = d.job_id
WHERE d.depends_on = %(id)s AND x.reason = 'dependency failed'
ORDER BY x.id
FOR UPDATE OF x;

-- name: unmet_dependencies
-- How many of a job's dependencies are not done yet, and how many of those are dead.
SELECT count(*) AS unmet, count(x.id) AS dead
FROM job_dependencies AS e
LEFT JOIN jobs AS p ON p.id = e.depends_on
LEFT JOIN dead_letters AS x ON x.id = e.depends_on
WHERE e.job_id = %(id)s
  AND ((p.id IS NOT NULL AND p.state <> 'done') OR x.id IS NOT NULL);

-- name: restore_waiting
-- The dead letter back into `jobs` under its own id (the identity never hands it out).
INSERT INTO jobs (id, queue, state, priority, payload, headers, attempts, max_attempts,
                  available_at, created_at, updated_at, last_error, dedup_key, depends_on,
                  timeout, group_key)
OVERRIDING SYSTEM VALUE
SELECT id, queue, 'waiting', priority, payload, headers, 0, max_attempts,
       %(now)s, created_at, %(now)s, last_error, dedup_key, depends_on, timeout,
       COALESCE(group_key,
                (SELECT '' FROM queues AS g WHERE g.name = dead_letters.queue AND g.grouped = 1))
FROM dead_letters WHERE id = %(id)s;

-- name: subscribers
-- Shared locks: a queue's deletion waits for this publish to commit (and deletes its copy),
-- or this publish waits for the deletion and no longer finds the queue subscribed.
SELECT queue FROM subscriptions WHERE topic = %(topic)s ORDER BY queue FOR SHARE;

-- name: lock_schedule
-- The schedule row for a change: a concurrent declaration waits, then sees this one.
SELECT * FROM schedules WHERE name = %(name)s FOR UPDATE;

-- name: lock_due_schedule
-- The schedule row for firing a tick. A second scheduler waits for the first to commit and
-- then reads the row as it committed it (`next_run_at` moved on), as SQLite's writer lock
-- makes it. Not SKIP LOCKED: a scheduler whose clock is ahead would skip, run on and later
-- coalesce ticks the other was about to fire.
SELECT * FROM schedules WHERE name = %(name)s FOR UPDATE;

