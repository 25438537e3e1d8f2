-- Flow control, SQLite's own statements (shared ones: storage/sql/flow.sql).

-- name: flow_live_leases
-- The queue's live leases (its jobs in flight), through the index of every live lease: their
-- number is bounded by the consumers' concurrency, never by the backlog or the history.
SELECT group_key, lease_expires_at FROM jobs INDEXED BY jobs_leases
WHERE state = 'leased' AND lease_expires_at > :now AND queue = :queue;

-- name: flow_group_heads
-- For each group of the queue (but the group ''): its first two unfinished jobs in enqueue
-- order with the group's turn and rate state (part 0: the head, and whether one waits behind
-- it) and the first :need claimable jobs among its first :window unfinished ones (part 1). The
-- groups are found by skipping through jobs_groups, one probe each; the window is read lazily
-- (a co-routine, in index order) and only until :need claimable jobs are found.
WITH RECURSIVE groups(key) AS (
    SELECT (SELECT min(group_key) FROM jobs
            WHERE queue = :queue AND group_key > '' AND group_key IS NOT NULL
              AND state IN ('ready', 'leased'))
    UNION ALL
    SELECT (SELECT min(group_key) FROM jobs
            WHERE queue = :queue AND group_key > groups.key AND group_key IS NOT NULL
              AND state IN ('ready', 'leased'))
    FROM groups WHERE groups.key IS NOT NULL
)
SELECT 0 AS part, j.id, j.group_key, j.priority, j.available_at,
       -- the claimable rule of `claim` and `claim_chosen`: keep them in step
       (j.available_at <= :now
        AND (j.state = 'ready'
             OR (j.attempts < COALESCE(j.max_attempts, :max_attempts)
                 AND j.cancel_requested_at IS NULL)))
           AS claimable,
       f.turn, f.tat
FROM groups
JOIN jobs AS j ON j.id IN (
    SELECT w.id FROM jobs AS w
    WHERE w.queue = :queue AND w.group_key = groups.key AND w.group_key IS NOT NULL
      AND w.state IN ('ready', 'leased')
    ORDER BY w.id LIMIT 2)
LEFT JOIN flow_groups AS f ON f.queue = :queue AND f.group_key = groups.key
WHERE groups.key IS NOT NULL
UNION ALL
SELECT 1, j.id, j.group_key, j.priority, j.available_at, 1, NULL, NULL
FROM groups
JOIN jobs AS j ON j.id IN (
    SELECT w.id FROM (
        SELECT id, state, available_at, attempts, max_attempts, cancel_requested_at FROM jobs
        WHERE queue = :queue AND group_key = groups.key AND group_key IS NOT NULL
          AND state IN ('ready', 'leased')
        ORDER BY id LIMIT :window) AS w
    WHERE w.available_at <= :now
      AND (w.state = 'ready'
           OR (w.attempts < COALESCE(w.max_attempts, :max_attempts)
               AND w.cancel_requested_at IS NULL))
    LIMIT :need)
-- A window of one or two jobs is in part 0 already.
WHERE groups.key IS NOT NULL AND :window > 2;

-- name: flow_default_heads
-- The group '' (jobs enqueued without a key on a queue with group limits: no group limit
-- holds them): its first :need claimable jobs in enqueue order, and its turn.
SELECT 1 AS part, j.id, j.group_key, j.priority, j.available_at, 1 AS claimable, f.turn, f.tat
FROM jobs AS j
LEFT JOIN flow_groups AS f ON f.queue = :queue AND f.group_key = ''
WHERE j.queue = :queue AND j.group_key = '' AND j.state IN ('ready', 'leased')
  AND j.available_at <= :now
  AND (j.state = 'ready'
       OR (j.attempts < COALESCE(j.max_attempts, :max_attempts)
           AND j.cancel_requested_at IS NULL))
ORDER BY j.id
LIMIT :need;

-- name: claim_chosen
-- A limited queue's claim of the jobs flow control chose (:ids, a JSON array): the same
-- lease as `claim` (keep the two in step), on rows that are still claimable.
UPDATE jobs
SET state = 'leased',
    attempts = attempts + 1,
    lease_token = lower(hex(randomblob(16))),
    lease_expires_at = :now + :visibility_timeout,
    available_at = :now + :visibility_timeout,
    last_error = CASE WHEN state = 'leased' THEN 'lease expired before ack' ELSE last_error END,
    updated_at = :now,
    started_at = :now, claimed_by = :worker, progress = NULL, progress_message = NULL
WHERE id IN (SELECT value FROM json_each(:ids))
  -- `+`: each chosen row by its id, never a walk of jobs_claim (after ANALYZE it would).
  AND +state IN ('ready', 'leased')
  AND available_at <= :now
  AND (state = 'ready'
       OR (attempts < COALESCE(max_attempts, :max_attempts) AND cancel_requested_at IS NULL))
RETURNING id, queue, payload, headers, priority, attempts,
    COALESCE(max_attempts, :max_attempts) AS effective_max_attempts,
    lease_token, lease_expires_at, created_at, available_at, updated_at, last_error,
    dedup_key, depends_on, COALESCE(timeout, :timeout) AS effective_timeout, started_at,
    claimed_by, group_key;

-- name: ack_announce
-- SQLite announces nothing (a waiter notices every commit): the plain ack.
UPDATE jobs
SET state = 'done', lease_token = NULL, lease_expires_at = NULL,
    finished_at = :now, updated_at = :now, result = :result
WHERE id = :id AND state = 'leased' AND lease_token = :token AND lease_expires_at > :now;

-- name: flow_hold_inserts
-- SQLite: the write transaction already holds the database; nothing to wait for.
SELECT 1;

-- name: flow_default_group
-- A queue that gains group limits: its unfinished jobs without a group join the group ''.
UPDATE jobs SET group_key = ''
WHERE id IN (
    SELECT id FROM jobs WHERE queue = :name AND state IN ('ready', 'leased')
    UNION ALL
    SELECT id FROM jobs WHERE queue = :name AND state = 'waiting'
) AND group_key IS NULL;
