-- Flow control (storage/flow.py, docs/flow-control.md): the statements both dialects run.
-- A limited queue's claim runs them inside one transaction that holds the queue (SQLite's
-- write lock; PostgreSQL's lock on the queue's row), so its counts stay true until it commits.

-- name: flow_is_limited
SELECT limited FROM queues WHERE name = :name;

-- name: flow_candidates
-- A limited queue without group limits: the jobs the plain claim would take, in its order.
-- The same claimable rule as `claim` and `claim_chosen`: keep the three in step.
SELECT id FROM jobs
WHERE queue = :queue
  AND state IN ('ready', 'leased')
  AND available_at <= :now
  AND (state = 'ready'
       OR (attempts < COALESCE(max_attempts, :max_attempts) AND cancel_requested_at IS NULL))
ORDER BY priority DESC, id
LIMIT :limit;

-- name: flow_record
-- The queue's rate state after a claim, and one more claim held back by its limits (or not).
UPDATE queues SET rate_tat = :rate_tat, throttled = throttled + :throttled
WHERE name = :queue;

-- name: flow_serve_group
-- A claim took jobs of this group: its turn and its rate state move on.
INSERT INTO flow_groups (queue, group_key, turn, tat)
VALUES (:queue, :group_key, :turn, :tat)
ON CONFLICT (queue, group_key) DO UPDATE SET turn = excluded.turn, tat = excluded.tat;

-- name: flow_refresh_flags
-- After a change of settings: whether the queue has any limit, and any group limit.
UPDATE queues
SET limited = CASE WHEN concurrency IS NULL AND rate_count IS NULL
                        AND group_concurrency IS NULL AND group_rate_count IS NULL
                   THEN 0 ELSE 1 END,
    grouped = CASE WHEN group_concurrency IS NULL AND group_rate_count IS NULL
                   THEN 0 ELSE 1 END
WHERE name = :name;

-- name: flow_restart_rate
-- A changed rate limit starts afresh (its old state belongs to another rate).
UPDATE queues SET rate_tat = NULL WHERE name = :name;

-- name: flow_restart_group_rates
UPDATE flow_groups SET tat = NULL WHERE queue = :name;

-- name: flow_forget_groups
-- Cleanup: groups whose rate is at rest since :before and that hold no unfinished job (one
-- that comes back is served as a new group: first).
DELETE FROM flow_groups
WHERE (tat IS NULL OR tat <= :before)
  AND NOT EXISTS (
      SELECT 1 FROM jobs AS j
      WHERE j.queue = flow_groups.queue AND j.group_key = flow_groups.group_key
        AND j.group_key IS NOT NULL AND j.state IN ('ready', 'leased'));

-- name: delete_queue_flow_groups
DELETE FROM flow_groups WHERE queue = :name;
