-- The state machine of the PostgreSQL backend, one named statement per transition, mirroring
-- sql/sqlite/queries.sql. Every statement that acts on a lease names the expected state AND the
-- lease token, so a stale consumer changes nothing. `%(now)s` always comes from the caller's
-- clock. Statements that make work claimable notify channel `persistent_queue` with the queue's
-- name (delivered on commit) so waiting consumers wake at once.

-- Fenced statements test the lease's end as `lease_expires_at - now > 0`: the same condition
-- as `lease_expires_at > now`, but one the planner cannot answer from the `jobs_leases` index,
-- so the row is always found by its primary key (a range over every live lease otherwise).

-- name: notify
SELECT pg_notify('persistent_queue', %(queue)s);

-- name: lock_queue
-- The queue's row, locked until the transaction ends (serialises deletes and bounds).
SELECT * FROM queues WHERE name = %(name)s FOR UPDATE;

-- name: delete_queue_jobs
-- Every state spelled out: each arm of the OR is read through its own partial index (a
-- BitmapOr); there is no index on the queue alone.
DELETE FROM jobs
WHERE queue = %(name)s
  AND (state IN ('ready', 'leased') OR state = 'waiting' OR state = 'done'
       OR state = 'cancelled');

-- name: count_unfinished
-- Through jobs_claim and jobs_waiting (one arm of the OR each), never the done rows.
SELECT count(*) AS n FROM jobs
WHERE queue = %(name)s AND (state IN ('ready', 'leased') OR state = 'waiting');

-- name: insert_jobs
-- A batch in one statement: one row per array element, ids in the order of the arrays
-- (the identity is drawn in the ORDER BY's order). Notifies once, on commit.
WITH inserted AS (
    INSERT INTO jobs (queue, state, priority, payload, headers, attempts, max_attempts,
                      available_at, created_at, updated_at, timeout, group_key)
    SELECT %(queue)s::text, 'ready', t.priority, t.payload, t.headers, 0, t.max_attempts,
           t.available_at, %(now)s::double precision, %(now)s::double precision, t.timeout,
           -- without a group: the group '' if the queue has group limits, read by this
           -- statement itself (see flow_hold_inserts)
           COALESCE(%(group_key)s::text,
                    (SELECT '' FROM queues AS g WHERE g.name = %(queue)s AND g.grouped = 1))
    FROM unnest(%(priorities)s::integer[], %(payloads)s::text[], %(headers)s::text[],
                %(max_attempts)s::integer[], %(available_ats)s::double precision[],
                %(timeouts)s::double precision[])
         WITH ORDINALITY AS t(priority, payload, headers, max_attempts, available_at, timeout,
                              ord)
    ORDER BY t.ord
    RETURNING id
)
SELECT inserted.id FROM inserted, (SELECT pg_notify('persistent_queue', %(queue)s)) AS woken
ORDER BY inserted.id;

-- name: insert_job_if_queue
-- The common enqueue in one autocommit statement: a job for an existing, unbounded queue.
-- No row returned (a new, bounded or grouped queue) means: take the transactional path.
WITH q AS (
    SELECT name, max_attempts, timeout FROM queues
    WHERE name = %(queue)s AND max_size IS NULL AND grouped = 0
), inserted AS (
    INSERT INTO jobs (queue, state, priority, payload, headers, attempts, max_attempts,
                      available_at, created_at, updated_at, timeout)
    SELECT q.name, 'ready', %(priority)s::integer, %(payload)s::text, %(headers)s::text, 0,
           %(max_attempts)s::integer, %(available_at)s::double precision,
           %(now)s::double precision, %(now)s::double precision,
           %(timeout)s::double precision
    FROM q
    RETURNING id, max_attempts, timeout
)
SELECT inserted.id, COALESCE(inserted.max_attempts, q.max_attempts) AS max_attempts,
       COALESCE(inserted.timeout, q.timeout) AS timeout,
       pg_notify('persistent_queue', q.name) AS woken
FROM inserted, q;

-- name: claim
-- One statement: pick the claimable rows no other transaction holds (SKIP LOCKED), lease them.
-- An expired lease on a job with attempts left is claimable again (its last attempt is
-- dead-lettered by `find_exhausted_leases` instead, which also cancels an expired lease
-- whose cancellation was requested). Records who claimed the attempt and when, and clears
-- the last attempt's progress.
WITH q AS (
    -- A paused queue claims nothing; a limited one is claimed by flow control instead.
    SELECT visibility_timeout, max_attempts, timeout FROM queues
    WHERE name = %(queue)s AND paused = 0 AND limited = 0
), picked AS MATERIALIZED (
    SELECT j.id FROM jobs AS j, q
    WHERE j.queue = %(queue)s
      AND j.state IN ('ready', 'leased')
      AND j.available_at <= %(now)s
      AND (j.state = 'ready'
           OR (j.attempts < COALESCE(j.max_attempts, q.max_attempts)
               AND j.cancel_requested_at IS NULL))
    ORDER BY j.priority DESC, j.id
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE jobs AS j
SET state = 'leased',
    attempts = j.attempts + 1,
    lease_token = replace(gen_random_uuid()::text, '-', ''),
    lease_expires_at = %(now)s + COALESCE(%(visibility_timeout)s::double precision,
                                          q.visibility_timeout),
    available_at = %(now)s + COALESCE(%(visibility_timeout)s::double precision,
                                      q.visibility_timeout),
    last_error = CASE WHEN j.state = 'leased' THEN 'lease expired before ack'
                      ELSE j.last_error END,
    updated_at = %(now)s,
    started_at = %(now)s, claimed_by = %(worker)s, progress = NULL, progress_message = NULL
FROM picked, q
WHERE j.id = picked.id
-- Explicit columns, in the order `sqlite_rows.job_from_claim` reads them by position.
RETURNING j.id, j.queue, j.payload, j.headers, j.priority, j.attempts,
    COALESCE(j.max_attempts, q.max_attempts),
    j.lease_token, j.lease_expires_at, j.created_at, j.available_at, j.updated_at,
    j.last_error, j.dedup_key, j.depends_on,
    COALESCE(j.timeout, q.timeout), j.started_at, j.claimed_by, j.group_key;

-- name: next_available_at
SELECT min(available_at) AS at FROM jobs
WHERE queue = %(queue)s AND state IN ('ready', 'leased');

-- name: ack
-- The result parameter is the task's JSON result (NULL for none), stored by the ack itself.
UPDATE jobs
SET state = 'done', lease_token = NULL, lease_expires_at = NULL,
    finished_at = %(now)s, updated_at = %(now)s, result = %(result)s
WHERE id = %(id)s AND state = 'leased' AND lease_token = %(token)s
  AND lease_expires_at - %(now)s > 0;

-- name: ack_many
-- Rows are locked in id order, so two batches that overlap cannot deadlock.
WITH wanted AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::text[]) AS t(id, token)
), locked AS (
    SELECT j.id FROM jobs AS j JOIN wanted AS w ON w.id = j.id
    WHERE j.state = 'leased' AND j.lease_token = w.token AND j.lease_expires_at - %(now)s > 0
    ORDER BY j.id
    FOR UPDATE OF j
)
UPDATE jobs AS j
SET state = 'done', lease_token = NULL, lease_expires_at = NULL,
    finished_at = %(now)s, updated_at = %(now)s
FROM locked
WHERE j.id = locked.id;

-- name: select_leased
-- The row a fenced operation acts on (locked), or nothing if the caller's lease is not current.
SELECT j.*, COALESCE(j.max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = j.queue))
    AS effective_max_attempts
FROM jobs AS j
WHERE j.id = %(id)s AND j.state = 'leased' AND j.lease_token = %(token)s
  AND j.lease_expires_at - %(now)s > 0
FOR UPDATE OF j;

-- name: requeue
UPDATE jobs
SET state = 'ready', lease_token = NULL, lease_expires_at = NULL,
    attempts = greatest(attempts - 1, 0), available_at = %(available_at)s, updated_at = %(now)s
WHERE id = %(id)s AND state = 'leased' AND lease_token = %(token)s
  AND lease_expires_at - %(now)s > 0
RETURNING *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = queue))
    AS effective_max_attempts,
    COALESCE(timeout, (SELECT q.timeout FROM queues q WHERE q.name = queue))
    AS effective_timeout;

-- name: extend
UPDATE jobs
SET lease_expires_at = %(until)s, available_at = %(until)s, updated_at = %(now)s
WHERE id = %(id)s AND state = 'leased' AND lease_token = %(token)s
  AND lease_expires_at - %(now)s > 0
RETURNING *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = queue))
    AS effective_max_attempts,
    COALESCE(timeout, (SELECT q.timeout FROM queues q WHERE q.name = queue))
    AS effective_timeout;

-- name: set_progress
-- The running handler's progress, fenced like `extend`; the lease is renewed to at least
-- :seconds (else the queue's visibility timeout) from now, never shortened.
UPDATE jobs
SET progress = %(fraction)s, progress_message = %(message)s,
    lease_expires_at = greatest(lease_expires_at, %(now)s + COALESCE(
        %(seconds)s::double precision,
        (SELECT q.visibility_timeout FROM queues q WHERE q.name = queue), 0)),
    available_at = greatest(lease_expires_at, %(now)s + COALESCE(
        %(seconds)s::double precision,
        (SELECT q.visibility_timeout FROM queues q WHERE q.name = queue), 0)),
    updated_at = %(now)s
WHERE id = %(id)s AND state = 'leased' AND lease_token = %(token)s
  AND lease_expires_at - %(now)s > 0
RETURNING *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = queue))
    AS effective_max_attempts,
    COALESCE(timeout, (SELECT q.timeout FROM queues q WHERE q.name = queue))
    AS effective_timeout;

-- name: cancel_requests
-- Which of these jobs have their cancellation requested: a primary-key probe per id, no
-- lock (the worker asks for the jobs it runs, about twice a second).
SELECT id FROM jobs
WHERE id = ANY (%(ids)s::bigint[]) AND cancel_requested_at IS NOT NULL;

-- name: insert_dead_letter
INSERT INTO dead_letters (id, queue, priority, payload, headers, attempts, max_attempts,
                          created_at, reason, last_error, dead_at, dedup_key, depends_on,
                          timeout, started_at, claimed_by, group_key)
SELECT id, queue, priority, payload, headers, attempts, max_attempts,
       created_at, %(reason)s::text, COALESCE(%(error)s::text, last_error),
       %(now)s::double precision, dedup_key, depends_on, timeout, started_at, claimed_by,
       group_key
FROM jobs WHERE id = %(id)s
RETURNING *;

-- name: find_exhausted_leases
-- Leases that expired on their last allowed attempt (these jobs crashed every consumer), and
-- expired leases of jobs whose cancellation was requested. Rows another transaction is
-- working on are left to it (SKIP LOCKED).
SELECT j.id, j.queue, j.attempts, j.started_at, j.claimed_by, j.cancel_requested_at,
       j.cancel_reason
FROM jobs AS j
WHERE j.state = 'leased' AND j.lease_expires_at <= %(now)s
  AND (j.cancel_requested_at IS NOT NULL
       OR j.attempts >= COALESCE(j.max_attempts,
                                 (SELECT q.max_attempts FROM queues AS q WHERE q.name = j.queue)))
ORDER BY j.id
FOR UPDATE OF j SKIP LOCKED;

-- name: get_job
SELECT j.*, COALESCE(j.max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = j.queue))
    AS effective_max_attempts,
    COALESCE(j.timeout, (SELECT q.timeout FROM queues q WHERE q.name = j.queue))
    AS effective_timeout
FROM jobs AS j WHERE j.id = %(id)s;

-- name: lock_job
SELECT j.*, COALESCE(j.max_attempts, (SELECT q.max_attempts FROM queues q WHERE q.name = j.queue))
    AS effective_max_attempts,
    COALESCE(j.timeout, (SELECT q.timeout FROM queues q WHERE q.name = j.queue))
    AS effective_timeout
FROM jobs AS j WHERE j.id = %(id)s
FOR UPDATE OF j;

-- name: lock_dead_letter
SELECT * FROM dead_letters WHERE id = %(id)s FOR UPDATE;

-- name: redrive_one
-- The job comes back under its own id (the identity never hands that id out again).
INSERT INTO jobs (id, queue, state, priority, payload, headers, attempts, max_attempts,
                  available_at, created_at, updated_at, last_error, dedup_key, depends_on,
                  timeout, group_key)
OVERRIDING SYSTEM VALUE
SELECT id, queue, 'ready', priority, payload, headers, 0, max_attempts,
       %(now)s::double precision, created_at, %(now)s::double precision, last_error,
       dedup_key, depends_on, timeout,
       COALESCE(group_key,
                (SELECT '' FROM queues AS g WHERE g.name = dead_letters.queue AND g.grouped = 1))
FROM dead_letters WHERE id = %(id)s
ON CONFLICT (id) DO NOTHING;

-- name: dead_letter_ids_of_queue
SELECT id, queue FROM dead_letters WHERE queue = %(queue)s ORDER BY id FOR UPDATE;

-- name: purge_queue
DELETE FROM jobs
WHERE queue = %(queue)s AND (state IN ('ready', 'leased') OR state = 'waiting');

-- name: count_pending_detail
-- Splits unfinished jobs into claimable-now, scheduled-later and expired-lease counts, and
-- counts the ready jobs waiting for a retry.
SELECT queue,
       count(*) FILTER (WHERE state = 'ready' AND available_at <= %(now)s) AS ready_now,
       count(*) FILTER (WHERE state = 'ready' AND available_at > %(now)s) AS scheduled,
       count(*) FILTER (WHERE state = 'leased' AND available_at <= %(now)s) AS expired,
       count(*) FILTER (WHERE state = 'ready' AND attempts > 0) AS retry_pending,
       min(available_at) FILTER (WHERE state = 'ready' AND available_at <= %(now)s)
           AS oldest_ready_at
FROM jobs WHERE state IN ('ready', 'leased')
GROUP BY queue;

-- name: cleanup_done
-- A batch from a range of jobs_done (queue, finished_at), locked, then deleted by primary
-- key (`= ANY (ARRAY(...))`: an `IN (subquery)` may be planned as a hash join over a scan
-- of the whole table).
DELETE FROM jobs WHERE id = ANY (ARRAY(
    SELECT id FROM jobs
    WHERE queue = %(queue)s AND state = 'done' AND finished_at <= %(before)s
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
));

-- name: cleanup_cancelled
-- Cancelled jobs past the retention, batched and locked as cleanup_done (jobs_cancelled).
DELETE FROM jobs WHERE id = ANY (ARRAY(
    SELECT id FROM jobs
    WHERE queue = %(queue)s AND state = 'cancelled' AND finished_at <= %(before)s
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
));

-- name: cleanup_results
-- Done jobs holding a result older than the result retention (a job acked without a result
-- stays until cleanup_done's --older-than); batched and locked as cleanup_done.
DELETE FROM jobs WHERE id = ANY (ARRAY(
    SELECT id FROM jobs
    WHERE queue = %(queue)s AND state = 'done' AND finished_at <= %(before)s
      AND result IS NOT NULL
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
));

