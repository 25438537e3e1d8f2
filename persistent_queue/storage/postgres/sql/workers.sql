-- The registry of producers and consumers, and small durable values (kv).

-- name: throughput_enqueued
-- Dead-lettered and cancelled jobs were enqueued too: they count where they were created.
-- Unfinished jobs come from their partial indexes; a done job created in the window also
-- finished in it, so only the window's range of each queue's jobs_done is read. The queue
-- names of done jobs come from a skip-scan of that index (as in `done_queue_names`), as one
-- array: `queue = ANY` probes jobs_done once per name.
WITH RECURSIVE names(name) AS (
    SELECT min(queue) FROM jobs WHERE state = 'done'
    UNION ALL
    SELECT (SELECT min(queue) FROM jobs WHERE state = 'done' AND queue > names.name)
    FROM names WHERE names.name IS NOT NULL
)
SELECT queue, floor(created_at / %(bucket)s) * %(bucket)s AS bucket, count(*) AS n
FROM (SELECT queue, created_at FROM jobs
      WHERE state IN ('ready', 'leased') AND created_at >= %(since)s
      UNION ALL
      SELECT queue, created_at FROM jobs WHERE state = 'waiting' AND created_at >= %(since)s
      UNION ALL
      SELECT queue, created_at FROM jobs
      WHERE queue = ANY (ARRAY(SELECT name FROM names WHERE name IS NOT NULL))
        AND state = 'done' AND finished_at >= %(since)s AND created_at >= %(since)s
      UNION ALL
      SELECT queue, created_at FROM jobs
      WHERE state = 'cancelled' AND finished_at >= %(since)s AND created_at >= %(since)s
      UNION ALL
      SELECT queue, created_at FROM dead_letters WHERE created_at >= %(since)s) AS created
GROUP BY 1, 2;

-- name: throughput_acked
-- The window's range of each queue's jobs_done (names as in `throughput_enqueued`).
WITH RECURSIVE names(name) AS (
    SELECT min(queue) FROM jobs WHERE state = 'done'
    UNION ALL
    SELECT (SELECT min(queue) FROM jobs WHERE state = 'done' AND queue > names.name)
    FROM names WHERE names.name IS NOT NULL
)
SELECT queue, floor(finished_at / %(bucket)s) * %(bucket)s AS bucket, count(*) AS n
FROM jobs
WHERE queue = ANY (ARRAY(SELECT name FROM names WHERE name IS NOT NULL))
  AND state = 'done' AND finished_at >= %(since)s
GROUP BY 1, 2;

-- name: throughput_failed
SELECT queue, floor(at / %(bucket)s) * %(bucket)s AS bucket, count(*) AS n
FROM job_events WHERE event IN ('failed', 'lease_expired') AND at >= %(since)s
GROUP BY 1, 2;

-- name: throughput_dead
SELECT queue, floor(dead_at / %(bucket)s) * %(bucket)s AS bucket, count(*) AS n
FROM dead_letters WHERE dead_at >= %(since)s GROUP BY 1, 2;
