-- Statements both dialects run (queries), written once with :name placeholders.

-- name: ensure_queue
INSERT INTO queues (name, max_attempts, visibility_timeout, max_size, paused, created_at, updated_at)
VALUES (:name, :max_attempts, :visibility_timeout, NULL, 0, :now, :now)
ON CONFLICT (name) DO NOTHING;

-- name: get_queue
SELECT * FROM queues WHERE name = :name;

-- name: list_queues
SELECT * FROM queues ORDER BY name;

-- name: delete_queue
DELETE FROM queues WHERE name = :name;

-- name: delete_queue_dead_letters
DELETE FROM dead_letters WHERE queue = :name;

-- name: delete_queue_events
DELETE FROM job_events WHERE queue = :name;

-- name: peek_claimable
SELECT 1 FROM jobs
WHERE queue = :queue
  AND state IN ('ready', 'leased')
  AND available_at <= :now
LIMIT 1;

-- name: retry_later
UPDATE jobs
SET state = 'ready', lease_token = NULL, lease_expires_at = NULL,
    available_at = :available_at, last_error = :error, updated_at = :now
WHERE id = :id AND state = 'leased' AND lease_token = :token;

-- name: delete_job
DELETE FROM jobs WHERE id = :id;

-- name: insert_event
INSERT INTO job_events (job_id, queue, at, event, attempt, detail, worker, run_time)
VALUES (:job_id, :queue, :now, :event, :attempt, :detail, :worker, :run_time);

-- name: get_dead_letter
SELECT * FROM dead_letters WHERE id = :id;

-- name: job_events
SELECT * FROM job_events WHERE job_id = :job_id ORDER BY id;

-- name: list_dead_letters
SELECT * FROM dead_letters WHERE queue = :queue ORDER BY id DESC LIMIT :limit OFFSET :offset;

-- name: list_all_dead_letters
SELECT * FROM dead_letters ORDER BY id DESC LIMIT :limit OFFSET :offset;

-- name: delete_dead_letter
DELETE FROM dead_letters WHERE id = :id;

-- name: purge_dead_letters
DELETE FROM dead_letters WHERE queue = :queue AND dead_at <= :before;

-- name: purge_all_dead_letters
DELETE FROM dead_letters WHERE dead_at <= :before;

-- name: count_by_state
-- Unfinished jobs from their partial indexes; done jobs counted in the done index alone
-- (an index-only pass over small entries, never the table's rows).
SELECT queue, state, count(*) AS n FROM jobs WHERE state IN ('ready', 'leased')
GROUP BY queue, state
UNION ALL
SELECT queue, 'waiting', count(*) FROM jobs WHERE state = 'waiting' GROUP BY queue
UNION ALL
SELECT queue, 'done', count(*) FROM jobs WHERE state = 'done' GROUP BY queue
UNION ALL
SELECT queue, 'cancelled', count(*) FROM jobs WHERE state = 'cancelled' GROUP BY queue;

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

-- name: cleanup_events
-- History of jobs that no longer exist (cleaned up, purged or deleted with their queue).
DELETE FROM job_events WHERE id IN (
    SELECT e.id FROM job_events AS e
    WHERE NOT EXISTS (SELECT 1 FROM jobs AS j WHERE j.id = e.job_id)
      AND NOT EXISTS (SELECT 1 FROM dead_letters AS d WHERE d.id = e.job_id)
    LIMIT :batch
);

-- name: create_queue
-- No row returned: the name exists (perhaps created concurrently a moment ago).
INSERT INTO queues (name, max_attempts, visibility_timeout, max_size, paused, created_at,
                    updated_at, timeout)
VALUES (:name, :max_attempts, :visibility_timeout, :max_size, 0, :now, :now, :timeout)
ON CONFLICT (name) DO NOTHING
RETURNING *;

-- name: any_exhausted_lease
-- An expired lease the reaper settles: on its last allowed attempt (dead-lettered), or of a
-- job whose cancellation was requested (cancelled).
SELECT 1 FROM jobs AS j
WHERE j.state = 'leased' AND j.lease_expires_at <= :now
  AND (j.cancel_requested_at IS NOT NULL
       OR j.attempts >= COALESCE(j.max_attempts,
                                 (SELECT q.max_attempts FROM queues AS q WHERE q.name = j.queue)))
LIMIT 1;

-- name: dependency_results
-- The results of the jobs a job depends on, by parent id: NULL for a parent without one (not
-- finished, acked without a result, dead-lettered or cleaned up).
SELECT d.depends_on AS id, p.result AS result
FROM job_dependencies AS d
LEFT JOIN jobs AS p ON p.id = d.depends_on
WHERE d.job_id = :id
ORDER BY d.depends_on;

-- name: request_cancel
-- A running job's cancellation is asked for: its worker sees it (`cancel_requests`, the
-- lease renewals) and stops it. The first request's time and reason are kept.
UPDATE jobs
SET cancel_requested_at = :now, cancel_reason = :reason, updated_at = :now
WHERE id = :id AND state = 'leased' AND cancel_requested_at IS NULL;

-- name: cancel_job
-- The row is held by the caller's transaction, which checked its state. A job that was not
-- running (:ran = 0) forgets its last attempt's start, so it shows no run time.
UPDATE jobs
SET state = 'cancelled', lease_token = NULL, lease_expires_at = NULL,
    finished_at = :now, updated_at = :now,
    cancel_requested_at = COALESCE(cancel_requested_at, :now),
    cancel_reason = COALESCE(cancel_reason, :reason),
    started_at = CASE WHEN :ran = 1 THEN started_at END,
    claimed_by = CASE WHEN :ran = 1 THEN claimed_by END
WHERE id = :id;

-- name: retry_now
-- A delayed or backing-off job becomes claimable now.
UPDATE jobs SET available_at = :now, updated_at = :now
WHERE id = :id AND state = 'ready' AND available_at > :now;

-- name: delete_job_events
DELETE FROM job_events WHERE job_id = :id;

-- name: delete_job_edges
-- The edges of a job that is deleted: what it waited for.
DELETE FROM job_dependencies WHERE job_id = :id;

-- name: edit_dead_letter
-- A dead letter's payload, headers or priority changed before it is redriven (set_x = 1
-- changes x; the caller holds the row and validated the values as an enqueue does).
UPDATE dead_letters
SET payload = CASE WHEN :set_payload = 1 THEN :payload ELSE payload END,
    headers = CASE WHEN :set_headers = 1 THEN :headers ELSE headers END,
    priority = CASE WHEN :set_priority = 1 THEN :priority ELSE priority END
WHERE id = :id
RETURNING *;
