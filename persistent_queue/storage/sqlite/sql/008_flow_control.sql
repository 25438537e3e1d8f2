-- Schema version 8: flow control (docs/flow-control.md): concurrency limits, rate limits and
-- ordered, fair groups, enforced inside the claim's transaction across every consumer.
--
-- A queue's limits (NULL: none). A rate limit is stored as its count and period in seconds
-- ("50/s" is 50 and 1.0). `limited` (any limit) and `grouped` (a group limit) are kept by the
-- storage core from the four settings: the plain claim reads `limited` in the same lookup as
-- `paused`, so a queue without limits claims exactly as before.
ALTER TABLE queues ADD COLUMN concurrency INTEGER
    CHECK (concurrency IS NULL OR concurrency >= 1);
ALTER TABLE queues ADD COLUMN rate_count INTEGER CHECK (rate_count IS NULL OR rate_count >= 1);
ALTER TABLE queues ADD COLUMN rate_period REAL CHECK (rate_period IS NULL OR rate_period > 0);
ALTER TABLE queues ADD COLUMN group_concurrency INTEGER
    CHECK (group_concurrency IS NULL OR group_concurrency >= 1);
ALTER TABLE queues ADD COLUMN group_rate_count INTEGER
    CHECK (group_rate_count IS NULL OR group_rate_count >= 1);
ALTER TABLE queues ADD COLUMN group_rate_period REAL
    CHECK (group_rate_period IS NULL OR group_rate_period > 0);
ALTER TABLE queues ADD COLUMN limited INTEGER NOT NULL DEFAULT 0 CHECK (limited IN (0, 1));
ALTER TABLE queues ADD COLUMN grouped INTEGER NOT NULL DEFAULT 0 CHECK (grouped IN (0, 1));
-- The queue's rate state (GCRA's theoretical arrival time) and how many claims its limits
-- have held back (the /metrics counter).
ALTER TABLE queues ADD COLUMN rate_tat REAL;
ALTER TABLE queues ADD COLUMN throttled INTEGER NOT NULL DEFAULT 0;

-- A job's group. On a queue with group limits a job enqueued without a key is stored with
-- the empty key '' (never a user's key: those have at least one character), so that every
-- job of such a queue is in `jobs_groups`; the group '' is held back by no group limit.
ALTER TABLE jobs ADD COLUMN group_key TEXT;
ALTER TABLE dead_letters ADD COLUMN group_key TEXT;

-- The unfinished jobs of each group in enqueue order: a grouped claim reads the first few of
-- each group (and finds the groups by skipping through it). Jobs without a group are not in
-- it, so an enqueue, claim or ack of one writes nothing more.
CREATE INDEX jobs_groups ON jobs (queue, group_key, id)
    WHERE group_key IS NOT NULL AND state IN ('ready', 'leased');

-- Per group of a grouped queue: the turn of the claim that last served it (claims rotate over
-- groups, least recently served first: each grouped claim of the queue numbers the groups it
-- serves after the highest turn it read, so the order holds however close the claims) and its
-- rate state. Written by grouped claims only; cleanup deletes the rows of groups at rest
-- without unfinished jobs.
CREATE TABLE flow_groups (
    queue     TEXT    NOT NULL,
    group_key TEXT    NOT NULL,
    turn      INTEGER NOT NULL,
    tat       REAL,
    PRIMARY KEY (queue, group_key)
) WITHOUT ROWID;
