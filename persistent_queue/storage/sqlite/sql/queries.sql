-- The state machine of the SQLite backend, one named statement per transition.
-- Every statement that acts on a lease names the expected state AND the lease token, so a
-- stale consumer changes nothing. `:now` always comes from the caller's clock.

-- name: delete_queue_jobs
-- Each state through its own partial index (there is no index on the queue alone).
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs WHERE queue = :name AND state IN ('ready', 'leased')
    UNION ALL
    SELECT id FROM jobs WHERE queue = :name AND state = 'waiting'
    UNION ALL
    SELECT id FROM jobs WHERE queue = :name AND state = 'done'
    UNION ALL
    SELECT id FROM jobs WHERE queue = :name AND state = 'cancelled'
);

-- name: count_unfinished
SELECT (SELECT count(*) FROM jobs WHERE queue = :name AND state IN ('ready', 'leased'))
     + (SELECT count(*) FROM jobs WHERE queue = :name AND state = 'waiting') AS n;

-- name: insert_job
INSERT INTO jobs (queue, state, priority, payload, headers, attempts, max_attempts,
                  available_at, created_at, updated_at, timeout)
VALUES (:queue, 'ready', :priority, :payload, :headers, 0, :max_attempts,
        :available_at, :now, :now, :timeout);

-- name: insert_jobs_batch
-- `enqueue_many`: jobs that differ only in their payload, in one statement. The payload texts
-- arrive as one JSON array of strings, so SQLite loops over the rows (in array order) and
-- AUTOINCREMENT's bookkeeping runs once per batch instead of once per row. Jobs without a
-- group join the group '' if the queue has group limits (one lookup per batch).
INSERT INTO jobs (queue, state, priority, payload, headers, attempts, max_attempts,
                  available_at, created_at, updated_at, timeout, group_key)
SELECT :queue, 'ready', :priority, value, :headers, 0, :max_attempts,
       :available_at, :now, :now, :timeout,
       COALESCE(:group_key, (SELECT '' FROM queues AS g WHERE g.name = :queue AND g.grouped = 1))
FROM json_each(:payloads);

-- name: insert_job_if_queue
-- The common enqueue in one autocommit statement: a job for an existing, unbounded queue.
-- No row inserted (a new, bounded or grouped queue) means: take the transactional path.
INSERT INTO jobs (queue, state, priority, payload, headers, attempts, max_attempts,
                  available_at, created_at, updated_at, timeout)
SELECT :queue, 'ready', :priority, :payload, :headers, 0, :max_attempts,
       :available_at, :now, :now, :timeout
FROM queues WHERE name = :queue AND max_size IS NULL AND grouped = 0
RETURNING id, COALESCE(max_attempts,
                       (SELECT q.max_attempts FROM queues q WHERE q.name = :queue)),
    COALESCE(timeout, (SELECT q.timeout FROM queues q WHERE q.name = :queue));

-- name: claim
-- Records who claimed the attempt and when (the history's `claimed` and the run time are
-- read from these, not from a row per claim), and clears the last attempt's progress. An
-- expired lease whose cancellation was requested is left to the reaper (it is cancelled).
UPDATE jobs
SET state = 'leased',
    attempts = attempts + 1,
    lease_token = lower(hex(randomblob(16))),
    lease_expires_at = :now + COALESCE(:visibility_timeout,
        (SELECT visibility_timeout FROM queues WHERE name = :queue)),
    available_at = :now + COALESCE(:visibility_timeout,
        (SELECT visibility_timeout FROM queues WHERE name = :queue)),
    last_error = CASE WHEN state = 'leased' THEN 'lease expired before ack' ELSE last_error END,
    updated_at = :now,
    started_at = :now, claimed_by = :worker, progress = NULL, progress_message = NULL
WHERE id IN (
    SELECT id FROM jobs
    WHERE queue = :queue
      AND state IN ('ready', 'leased')
      AND available_at <= :now
      AND (state = 'ready'
           OR (attempts < COALESCE(max_attempts,
                                   (SELECT max_attempts FROM queues WHERE name = :queue))
               AND cancel_requested_at IS NULL))
      -- A paused queue claims nothing; a limited one is claimed by flow control instead.
      AND NOT EXISTS (SELECT 1 FROM queues WHERE name = :queue AND (paused = 1 OR limited = 1))
    ORDER BY priority DESC, id
    LIMIT :limit
)
-- Explicit columns, in the order `sqlite_rows.job_from_claim` reads them by position.
RETURNING id, queue, payload, headers, priority, attempts,
    COALESCE(max_attempts, (SELECT max_attempts FROM queues WHERE name = :queue)),
    lease_token, lease_expires_at, created_at, available_at, updated_at, last_error,
    dedup_key, depends_on,
    COALESCE(timeout, (SELECT timeout FROM queues WHERE name = :queue)), started_at, claimed_by,
    group_key;

-- name: next_available_at
-- Pinned to the partial claim index: with ANALYZE statistics dominated by done rows the
-- planner would otherwise read the whole table for this min().
SELECT min(available_at) AS at FROM jobs INDEXED BY jobs_claim
WHERE queue = :queue AND state IN ('ready', 'leased');

-- name: ack
-- :result is the task's JSON result (NULL for none), stored by the ack itself.
UPDATE jobs
SET state = 'done', lease_token = NULL, lease_expires_at = NULL,
    finished_at = :now, updated_at = :now, result = :result
WHERE id = :id AND state = 'leased' AND lease_token = :token AND lease_expires_at > :now;

-- name: select_leased
-- The row a fenced operation acts on, or nothing if the caller's lease is not current.
SELECT *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = jobs.queue))
    AS effective_max_attempts
FROM jobs
WHERE id = :id AND state = 'leased' AND lease_token = :token AND lease_expires_at > :now;

-- name: requeue
UPDATE jobs
SET state = 'ready', lease_token = NULL, lease_expires_at = NULL,
    attempts = max(attempts - 1, 0), available_at = :available_at, updated_at = :now
WHERE id = :id AND state = 'leased' AND lease_token = :token AND lease_expires_at > :now
RETURNING *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = +jobs.queue))
    AS effective_max_attempts,
    COALESCE(timeout, (SELECT q.timeout FROM queues q WHERE q.name = +jobs.queue))
    AS effective_timeout;

-- name: extend
UPDATE jobs
SET lease_expires_at = :until, available_at = :until, updated_at = :now
WHERE id = :id AND state = 'leased' AND lease_token = :token AND lease_expires_at > :now
-- `+jobs.queue`: without the unary plus SQLite scans `queues` for this RETURNING subquery.
RETURNING *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = +jobs.queue))
    AS effective_max_attempts,
    COALESCE(timeout, (SELECT q.timeout FROM queues q WHERE q.name = +jobs.queue))
    AS effective_timeout;

-- name: set_progress
-- The running handler's progress, fenced like `extend`; the lease is renewed to at least
-- :seconds (else the queue's visibility timeout) from now, never shortened.
UPDATE jobs
SET progress = :fraction, progress_message = :message,
    lease_expires_at = max(lease_expires_at, :now + COALESCE(:seconds,
        (SELECT q.visibility_timeout FROM queues q WHERE q.name = +jobs.queue), 0)),
    available_at = max(lease_expires_at, :now + COALESCE(:seconds,
        (SELECT q.visibility_timeout FROM queues q WHERE q.name = +jobs.queue), 0)),
    updated_at = :now
WHERE id = :id AND state = 'leased' AND lease_token = :token AND lease_expires_at > :now
RETURNING *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = +jobs.queue))
    AS effective_max_attempts,
    COALESCE(timeout, (SELECT q.timeout FROM queues q WHERE q.name = +jobs.queue))
    AS effective_timeout;

-- name: cancel_requests
-- Which of these jobs (:ids, a JSON array) have their cancellation requested: a read by
-- primary key per id, no write lock (the worker asks for the jobs it runs, about twice a
-- second).
SELECT id FROM jobs
WHERE id IN (SELECT value FROM json_each(:ids)) AND cancel_requested_at IS NOT NULL;

-- name: insert_dead_letter
INSERT INTO dead_letters (id, queue, priority, payload, headers, attempts, max_attempts,
                          created_at, reason, last_error, dead_at, dedup_key, depends_on,
                          timeout, started_at, claimed_by, group_key)
SELECT id, queue, priority, payload, headers, attempts, max_attempts,
       created_at, :reason, COALESCE(:error, last_error), :now, dedup_key, depends_on,
       timeout, started_at, claimed_by, group_key
FROM jobs WHERE id = :id
RETURNING *;

-- name: find_exhausted_leases
-- Leases that expired on their last allowed attempt (these jobs crashed every consumer), and
-- expired leases of jobs whose cancellation was requested.
SELECT j.id, j.queue, j.attempts, j.started_at, j.claimed_by, j.cancel_requested_at,
       j.cancel_reason
FROM jobs AS j
WHERE j.state = 'leased' AND j.lease_expires_at <= :now
  AND (j.cancel_requested_at IS NOT NULL
       OR j.attempts >= COALESCE(j.max_attempts,
                                 (SELECT q.max_attempts FROM queues AS q WHERE q.name = j.queue)));

-- name: get_job
SELECT *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = jobs.queue))
    AS effective_max_attempts,
    COALESCE(timeout, (SELECT q.timeout FROM queues q WHERE q.name = jobs.queue))
    AS effective_timeout
FROM jobs WHERE id = :id;

-- name: redrive_one
-- Under its own id: in a group, the job takes its old place in the group's order. A job
-- without a group joins the group '' if its queue has group limits now.
INSERT INTO jobs (id, queue, state, priority, payload, headers, attempts, max_attempts,
                  available_at, created_at, updated_at, last_error, dedup_key, depends_on,
                  timeout, group_key)
SELECT id, queue, 'ready', priority, payload, headers, 0, max_attempts,
       :now, created_at, :now, last_error, dedup_key, depends_on, timeout,
       COALESCE(group_key,
                (SELECT '' FROM queues AS g WHERE g.name = dead_letters.queue AND g.grouped = 1))
FROM dead_letters WHERE id = :id;

-- name: dead_letter_ids_of_queue
SELECT id, queue FROM dead_letters WHERE queue = :queue ORDER BY id;

-- name: purge_queue
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs WHERE queue = :queue AND state IN ('ready', 'leased')
    UNION ALL
    SELECT id FROM jobs WHERE queue = :queue AND state = 'waiting'
);

-- name: count_pending_detail
-- Splits unfinished jobs into claimable-now, scheduled-later and expired-lease counts, and
-- counts the ready jobs waiting for a retry.
SELECT queue,
       sum(state = 'ready' AND available_at <= :now) AS ready_now,
       sum(state = 'ready' AND available_at > :now) AS scheduled,
       sum(state = 'leased' AND available_at <= :now) AS expired,
       sum(state = 'ready' AND attempts > 0) AS retry_pending,
       min(CASE WHEN state = 'ready' AND available_at <= :now THEN available_at END)
           AS oldest_ready_at
FROM jobs WHERE state IN ('ready', 'leased')
GROUP BY queue;

-- name: cleanup_done
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs
    WHERE queue = :queue AND state = 'done' AND finished_at <= :before
    LIMIT :batch
);

-- name: cleanup_cancelled
-- Cancelled jobs past the retention, as `cleanup_done` (through jobs_cancelled).
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs
    WHERE queue = :queue AND state = 'cancelled' AND finished_at <= :before
    LIMIT :batch
);

-- name: cleanup_results
-- Done jobs holding a result older than the result retention (a job acked without a result
-- stays until cleanup_done's --older-than).
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs
    WHERE queue = :queue AND state = 'done' AND finished_at <= :before
      AND result IS NOT NULL
    LIMIT :batch
);

-- name: ack_many
-- One statement: :leases is a JSON object mapping each job id to its lease
-- token (an object, not an array of pairs: each lease is read once, with no json_extract
-- parsing its pair again). The caller compares the number of rows changed with the number
-- of leases (and rolls back if short).
UPDATE jobs
SET state = 'done', lease_token = NULL, lease_expires_at = NULL,
    finished_at = :now, updated_at = :now
FROM (SELECT CAST(key AS INTEGER) AS id, value AS token FROM json_each(:leases)) AS lease
WHERE jobs.id = lease.id AND +jobs.state = 'leased' AND jobs.lease_token = lease.token
  -- `+`: never drive the update from an index of every live lease (after ANALYZE it would).
  AND +jobs.lease_expires_at > :now;

-- name: lock_job
-- SQLite: BEGIN IMMEDIATE already holds the whole database; a plain read.
SELECT *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = jobs.queue))
    AS effective_max_attempts,
    COALESCE(timeout, (SELECT q.timeout FROM queues q WHERE q.name = jobs.queue))
    AS effective_timeout
FROM jobs WHERE id = :id;

-- name: lock_queue
-- SQLite: BEGIN IMMEDIATE already holds the whole database; a plain read.
SELECT * FROM queues WHERE name = :name;

-- name: lock_dead_letter
SELECT * FROM dead_letters WHERE id = :id;
