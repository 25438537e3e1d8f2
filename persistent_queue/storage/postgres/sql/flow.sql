-- Flow control, PostgreSQL's own statements (shared ones: storage/sql/flow.sql).

-- name: flow_live_leases
-- The queue's live leases (its jobs in flight), through the index of every live lease: their
-- number is bounded by the consumers' concurrency, never by the backlog or the history.
SELECT group_key, lease_expires_at FROM jobs
WHERE state = 'leased' AND lease_expires_at > %(now)s AND queue = %(queue)s;

-- name: flow_group_heads
-- For each group of the queue (but the group ''): its first two unfinished jobs in enqueue
-- order with the group's turn and rate state (part 0: the head, and whether one waits behind
-- it) and the first need claimable jobs among its first window unfinished ones (part 1). The
-- groups are found by skipping through jobs_groups, one probe each; the window is read in
-- index order and only until need claimable jobs are found (no sort above it).
WITH RECURSIVE groups(key) AS (
    (SELECT group_key FROM jobs
     WHERE queue = %(queue)s AND group_key > '' AND group_key IS NOT NULL
       AND state IN ('ready', 'leased')
     ORDER BY group_key LIMIT 1)
    UNION ALL
    SELECT (SELECT j.group_key FROM jobs AS j
            WHERE j.queue = %(queue)s AND j.group_key > groups.key
              AND j.group_key IS NOT NULL AND j.state IN ('ready', 'leased')
            ORDER BY j.group_key LIMIT 1)
    FROM groups WHERE groups.key IS NOT NULL
)
SELECT 0 AS part, h.id, h.group_key, h.priority, h.available_at,
       -- the claimable rule of `claim` and `claim_chosen`: keep them in step
       (h.available_at <= %(now)s
        AND (h.state = 'ready'
             OR (h.attempts < COALESCE(h.max_attempts, %(max_attempts)s::integer)
                 AND h.cancel_requested_at IS NULL)))
           AS claimable,
       f.turn, f.tat
FROM groups
CROSS JOIN LATERAL (
    SELECT w.id, w.group_key, w.priority, w.available_at, w.state, w.attempts, w.max_attempts,
           w.cancel_requested_at
    FROM jobs AS w
    WHERE w.queue = %(queue)s AND w.group_key = groups.key AND w.group_key IS NOT NULL
      AND w.state IN ('ready', 'leased')
    ORDER BY w.id LIMIT 2
) AS h
LEFT JOIN flow_groups AS f ON f.queue = %(queue)s AND f.group_key = groups.key
WHERE groups.key IS NOT NULL
UNION ALL
SELECT 1, t.id, t.group_key, t.priority, t.available_at, true, NULL, NULL
FROM groups
CROSS JOIN LATERAL (
    SELECT w.id, w.group_key, w.priority, w.available_at FROM (
        SELECT id, group_key, priority, state, available_at, attempts, max_attempts,
               cancel_requested_at
        FROM jobs
        WHERE queue = %(queue)s AND group_key = groups.key AND group_key IS NOT NULL
          AND state IN ('ready', 'leased')
        ORDER BY id LIMIT %(window)s) AS w
    WHERE w.available_at <= %(now)s
      AND (w.state = 'ready'
           OR (w.attempts < COALESCE(w.max_attempts, %(max_attempts)s::integer)
               AND w.cancel_requested_at IS NULL))
    LIMIT %(need)s
) AS t
-- A window of one or two jobs is in part 0 already.
WHERE groups.key IS NOT NULL AND %(window)s::integer > 2;

-- name: flow_default_heads
-- The group '' (jobs enqueued without a key on a queue with group limits: no group limit
-- holds them): its first need claimable jobs in enqueue order, and its turn.
SELECT 1 AS part, j.id, j.group_key, j.priority, j.available_at, true AS claimable,
       f.turn, f.tat
FROM jobs AS j
LEFT JOIN flow_groups AS f ON f.queue = %(queue)s AND f.group_key = ''
WHERE j.queue = %(queue)s AND j.group_key = '' AND j.state IN ('ready', 'leased')
  AND j.available_at <= %(now)s
  AND (j.state = 'ready'
       OR (j.attempts < COALESCE(j.max_attempts, %(max_attempts)s::integer)
           AND j.cancel_requested_at IS NULL))
ORDER BY j.id
LIMIT %(need)s;

-- name: claim_chosen
-- A limited queue's claim of the jobs flow control chose (ids): the same lease as `claim`
-- (keep the two in step), on rows that are still claimable. The caller holds the queue's row,
-- so no other limited claim of the queue runs meanwhile.
UPDATE jobs AS j
SET state = 'leased',
    attempts = j.attempts + 1,
    lease_token = replace(gen_random_uuid()::text, '-', ''),
    lease_expires_at = %(now)s + %(visibility_timeout)s::double precision,
    available_at = %(now)s + %(visibility_timeout)s::double precision,
    last_error = CASE WHEN j.state = 'leased' THEN 'lease expired before ack'
                      ELSE j.last_error END,
    updated_at = %(now)s,
    started_at = %(now)s, claimed_by = %(worker)s, progress = NULL, progress_message = NULL
WHERE j.id = ANY (%(ids)s::bigint[])
  -- `|| ''`: each chosen row by its primary key, never a walk of jobs_claim (the same
  -- condition, but one the planner cannot answer from that partial index).
  AND j.state || '' IN ('ready', 'leased')
  AND j.available_at <= %(now)s
  AND (j.state = 'ready'
       OR (j.attempts < COALESCE(j.max_attempts, %(max_attempts)s::integer)
           AND j.cancel_requested_at IS NULL))
RETURNING j.id, j.queue, j.payload, j.headers, j.priority, j.attempts,
    COALESCE(j.max_attempts, %(max_attempts)s::integer) AS effective_max_attempts,
    j.lease_token, j.lease_expires_at, j.created_at, j.available_at, j.updated_at,
    j.last_error, j.dedup_key, j.depends_on,
    COALESCE(j.timeout, %(timeout)s::double precision) AS effective_timeout, j.started_at,
    j.claimed_by, j.group_key;

-- name: ack_announce
-- The ack of a process that claims from limited queues: a consumer held back by the job's
-- queue's concurrency is woken (one announcement, only for a limited queue). One row if acked.
WITH acked AS (
    UPDATE jobs
    SET state = 'done', lease_token = NULL, lease_expires_at = NULL,
        finished_at = %(now)s, updated_at = %(now)s, result = %(result)s
    WHERE id = %(id)s AND state = 'leased' AND lease_token = %(token)s
      AND lease_expires_at - %(now)s > 0
    RETURNING queue
)
SELECT acked.queue,
       (SELECT pg_notify('persistent_queue', q.name) FROM queues AS q
        WHERE q.name = acked.queue AND q.limited = 1) AS woken
FROM acked;

-- name: flow_hold_inserts
-- A queue gains group limits: wait for every transaction writing jobs to end, and hold new
-- ones until this commits, so that no insert that read the queue's settings before the change
-- stores a job outside its groups (an insert waiting for this lock reads them afresh).
LOCK TABLE jobs IN SHARE MODE;

-- name: flow_default_group
-- A queue that gains group limits: its unfinished jobs without a group join the group ''.
UPDATE jobs SET group_key = ''
WHERE queue = %(name)s AND (state IN ('ready', 'leased') OR state = 'waiting')
  AND group_key IS NULL;
