-- The state machine of the SQLite backend, one named statement per transition.
-- Every statement that acts on a lease names the expected state AND the lease token, so a
-- stale consumer changes nothing. `:now` always comes from the caller's clock.

-- name: ensure_queue
INSERT INTO queues (name, max_attempts, visibility_timeout, max_size, paused, created_at, updated_at)
VALUES (:name, :max_attempts, :visibility_timeout, NULL, 0, :now, :now)
ON CONFLICT (name) DO NOTHING;

-- name: create_queue
INSERT INTO queues (name, max_attempts, visibility_timeout, max_size, paused, created_at, updated_at)
VALUES (:name, :max_attempts, :visibility_timeout, :max_size, 0, :now, :now);

-- name: get_queue
SELECT * FROM queues WHERE name = :name;

-- name: list_queues
SELECT * FROM queues ORDER BY name;

-- name: delete_queue
DELETE FROM queues WHERE name = :name;

-- name: delete_queue_jobs
-- Each state through its own partial index (there is no index on the queue alone).
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs WHERE queue = :name AND state IN ('ready', 'leased')
    UNION ALL
    SELECT id FROM jobs WHERE queue = :name AND state = 'waiting'
    UNION ALL
    SELECT id FROM jobs WHERE queue = :name AND state = 'done'
);

-- name: delete_queue_dead_letters
DELETE FROM dead_letters WHERE queue = :name;

-- name: delete_queue_events
DELETE FROM job_events WHERE queue = :name;

-- name: count_unfinished
SELECT (SELECT count(*) FROM jobs WHERE queue = :name AND state IN ('ready', 'leased'))
     + (SELECT count(*) FROM jobs WHERE queue = :name AND state = 'waiting');

-- name: insert_job
INSERT INTO jobs (queue, state, priority, payload, headers, attempts, max_attempts,
                  available_at, created_at, updated_at)
VALUES (:queue, 'ready', :priority, :payload, :headers, 0, :max_attempts,
        :available_at, :now, :now);

-- name: insert_jobs_batch
-- `enqueue_many`: jobs that differ only in their payload, in one statement. The payload texts
-- arrive as one JSON array of strings, so SQLite loops over the rows (in array order) and
-- AUTOINCREMENT's bookkeeping runs once per batch instead of once per row.
INSERT INTO jobs (queue, state, priority, payload, headers, attempts, max_attempts,
                  available_at, created_at, updated_at)
SELECT :queue, 'ready', :priority, value, :headers, 0, :max_attempts,
       :available_at, :now, :now
FROM json_each(:payloads);

-- name: insert_job_if_queue
-- The common enqueue in one autocommit statement: a job for an existing, unbounded queue.
-- No row inserted (a new or bounded queue) means: take the transactional path instead.
INSERT INTO jobs (queue, state, priority, payload, headers, attempts, max_attempts,
                  available_at, created_at, updated_at)
SELECT :queue, 'ready', :priority, :payload, :headers, 0, :max_attempts,
       :available_at, :now, :now
FROM queues WHERE name = :queue AND max_size IS NULL
RETURNING id, COALESCE(max_attempts,
                       (SELECT q.max_attempts FROM queues q WHERE q.name = :queue));

-- name: claim
UPDATE jobs
SET state = 'leased',
    attempts = attempts + 1,
    lease_token = lower(hex(randomblob(16))),
    lease_expires_at = :now + COALESCE(:visibility_timeout,
        (SELECT visibility_timeout FROM queues WHERE name = :queue)),
    available_at = :now + COALESCE(:visibility_timeout,
        (SELECT visibility_timeout FROM queues WHERE name = :queue)),
    last_error = CASE WHEN state = 'leased' THEN 'lease expired before ack' ELSE last_error END,
    updated_at = :now
WHERE id IN (
    SELECT id FROM jobs
    WHERE queue = :queue
      AND state IN ('ready', 'leased')
      AND available_at <= :now
      AND (state = 'ready'
           OR attempts < COALESCE(max_attempts,
                                  (SELECT max_attempts FROM queues WHERE name = :queue)))
      AND NOT EXISTS (SELECT 1 FROM queues WHERE name = :queue AND paused = 1)
    ORDER BY priority DESC, id
    LIMIT :limit
)
-- Explicit columns, in the order `sqlite_rows.job_from_claim` reads them by position.
RETURNING id, queue, payload, headers, priority, attempts,
    COALESCE(max_attempts, (SELECT max_attempts FROM queues WHERE name = :queue)),
    lease_token, lease_expires_at, created_at, available_at, updated_at, last_error,
    dedup_key, depends_on;

-- name: peek_claimable
SELECT 1 FROM jobs
WHERE queue = :queue
  AND state IN ('ready', 'leased')
  AND available_at <= :now
LIMIT 1;

-- name: next_available_at
-- Pinned to the partial claim index: with ANALYZE statistics dominated by done rows the
-- planner would otherwise read the whole table for this min().
SELECT min(available_at) FROM jobs INDEXED BY jobs_claim
WHERE queue = :queue AND state IN ('ready', 'leased');

-- name: ack
UPDATE jobs
SET state = 'done', lease_token = NULL, lease_expires_at = NULL,
    finished_at = :now, updated_at = :now
WHERE id = :id AND state = 'leased' AND lease_token = :token AND lease_expires_at > :now;

-- name: ack_batch
-- `ack_many` in one statement: :leases is a JSON object mapping each job id to its lease
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

-- name: select_leased
-- The row a fenced operation acts on, or nothing if the caller's lease is not current.
SELECT *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = jobs.queue))
    AS effective_max_attempts
FROM jobs
WHERE id = :id AND state = 'leased' AND lease_token = :token AND lease_expires_at > :now;

-- name: retry_later
UPDATE jobs
SET state = 'ready', lease_token = NULL, lease_expires_at = NULL,
    available_at = :available_at, last_error = :error, updated_at = :now
WHERE id = :id AND state = 'leased' AND lease_token = :token;

-- name: requeue
UPDATE jobs
SET state = 'ready', lease_token = NULL, lease_expires_at = NULL,
    attempts = max(attempts - 1, 0), available_at = :available_at, updated_at = :now
WHERE id = :id AND state = 'leased' AND lease_token = :token AND lease_expires_at > :now;

-- name: extend
UPDATE jobs
SET lease_expires_at = :until, available_at = :until, updated_at = :now
WHERE id = :id AND state = 'leased' AND lease_token = :token AND lease_expires_at > :now
-- `+jobs.queue`: without the unary plus SQLite scans `queues` for this RETURNING subquery.
RETURNING *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = +jobs.queue))
    AS effective_max_attempts;

-- name: insert_dead_letter
INSERT INTO dead_letters (id, queue, priority, payload, headers, attempts, max_attempts,
                          created_at, reason, last_error, dead_at, dedup_key, depends_on)
SELECT id, queue, priority, payload, headers, attempts, max_attempts,
       created_at, :reason, COALESCE(:error, last_error), :now, dedup_key, depends_on
FROM jobs WHERE id = :id;

-- name: delete_job
DELETE FROM jobs WHERE id = :id;

-- name: find_exhausted_leases
-- Leases that expired on their last allowed attempt: these jobs crashed every consumer.
SELECT j.id, j.queue, j.attempts FROM jobs AS j
WHERE j.state = 'leased' AND j.lease_expires_at <= :now
  AND j.attempts >= COALESCE(j.max_attempts,
                             (SELECT q.max_attempts FROM queues AS q WHERE q.name = j.queue));

-- name: insert_event
INSERT INTO job_events (job_id, queue, at, event, attempt, detail)
VALUES (:job_id, :queue, :now, :event, :attempt, :detail);

-- name: get_job
SELECT *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = jobs.queue))
    AS effective_max_attempts
FROM jobs WHERE id = :id;

-- name: get_dead_letter
SELECT * FROM dead_letters WHERE id = :id;

-- name: job_events
SELECT * FROM job_events WHERE job_id = :job_id ORDER BY id;

-- name: list_dead_letters
SELECT * FROM dead_letters WHERE queue = :queue ORDER BY id DESC LIMIT :limit OFFSET :offset;

-- name: list_all_dead_letters
SELECT * FROM dead_letters ORDER BY id DESC LIMIT :limit OFFSET :offset;

-- name: redrive_one
INSERT INTO jobs (id, queue, state, priority, payload, headers, attempts, max_attempts,
                  available_at, created_at, updated_at, last_error, dedup_key, depends_on)
SELECT id, queue, 'ready', priority, payload, headers, 0, max_attempts,
       :now, created_at, :now, last_error, dedup_key, depends_on
FROM dead_letters WHERE id = :id;

-- name: dead_letter_ids_of_queue
SELECT id, queue FROM dead_letters WHERE queue = :queue ORDER BY id;

-- name: delete_dead_letter
DELETE FROM dead_letters WHERE id = :id;

-- name: purge_dead_letters
DELETE FROM dead_letters WHERE queue = :queue AND dead_at <= :before;

-- name: purge_all_dead_letters
DELETE FROM dead_letters WHERE dead_at <= :before;

-- name: purge_queue
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs WHERE queue = :queue AND state IN ('ready', 'leased')
    UNION ALL
    SELECT id FROM jobs WHERE queue = :queue AND state = 'waiting'
);

-- name: count_by_state
-- Unfinished jobs from their partial indexes; done jobs counted in the done index alone
-- (an index-only pass over small entries, never the table's rows).
SELECT queue, state, count(*) AS n FROM jobs WHERE state IN ('ready', 'leased')
GROUP BY queue, state
UNION ALL
SELECT queue, 'waiting', count(*) FROM jobs WHERE state = 'waiting' GROUP BY queue
UNION ALL
SELECT queue, 'done', count(*) FROM jobs WHERE state = 'done' GROUP BY queue;

-- name: count_pending_detail
-- Splits unfinished jobs into claimable-now, scheduled-later and expired-lease counts.
SELECT queue,
       sum(state = 'ready' AND available_at <= :now) AS ready_now,
       sum(state = 'ready' AND available_at > :now) AS scheduled,
       sum(state = 'leased' AND available_at <= :now) AS expired,
       min(CASE WHEN state = 'ready' AND available_at <= :now THEN available_at END)
           AS oldest_ready_at
FROM jobs WHERE state IN ('ready', 'leased')
GROUP BY queue;

-- name: count_dead
SELECT queue, count(*) AS n FROM dead_letters GROUP BY queue;

-- name: count_retries
SELECT queue, count(*) AS n FROM job_events
WHERE event IN ('failed', 'lease_expired') GROUP BY queue;

-- name: done_queue_names
-- The distinct queue names of done jobs, one index probe per name (a skip-scan of jobs_done):
-- cleanup also reaches done jobs whose queue row is gone.
WITH RECURSIVE names(name) AS (
    SELECT min(queue) FROM jobs WHERE state = 'done'
    UNION ALL
    SELECT (SELECT min(queue) FROM jobs WHERE state = 'done' AND queue > names.name)
    FROM names WHERE names.name IS NOT NULL
)
SELECT name FROM names WHERE name IS NOT NULL;

-- name: cleanup_done
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs
    WHERE queue = :queue AND state = 'done' AND finished_at <= :before
    LIMIT :batch
);

-- name: cleanup_events
-- History of jobs that no longer exist (cleaned up, purged or deleted with their queue).
DELETE FROM job_events WHERE id IN (
    SELECT e.id FROM job_events AS e
    WHERE NOT EXISTS (SELECT 1 FROM jobs AS j WHERE j.id = e.job_id)
      AND NOT EXISTS (SELECT 1 FROM dead_letters AS d WHERE d.id = e.job_id)
    LIMIT :batch
);
