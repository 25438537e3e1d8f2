-- The registry of producers and consumers, and small durable values (kv).

-- name: throughput_enqueued
-- Dead-lettered and cancelled jobs were enqueued too: they count where they were created.
-- Unfinished jobs come from their partial indexes; a done job created in the window also
-- finished in it, so only the window's range of each queue's done index is read.
SELECT queue, CAST(created_at / :bucket AS INTEGER) * :bucket AS bucket, count(*) AS n
FROM (SELECT queue, created_at FROM jobs
      WHERE state IN ('ready', 'leased') AND created_at >= :since
      UNION ALL
      SELECT queue, created_at FROM jobs WHERE state = 'waiting' AND created_at >= :since
      UNION ALL
      SELECT j.queue, j.created_at FROM queues AS q CROSS JOIN jobs AS j
      WHERE j.queue = q.name AND j.state = 'done' AND j.finished_at >= :since
        AND j.created_at >= :since
      UNION ALL
      SELECT j.queue, j.created_at FROM queues AS q CROSS JOIN jobs AS j
      WHERE j.queue = q.name AND j.state = 'cancelled' AND j.finished_at >= :since
        AND j.created_at >= :since
      UNION ALL
      SELECT queue, created_at FROM dead_letters WHERE created_at >= :since)
GROUP BY queue, bucket;

-- name: throughput_acked
-- Per queue, the window's range of its done index (queues outer: CROSS JOIN keeps the order).
SELECT j.queue, CAST(j.finished_at / :bucket AS INTEGER) * :bucket AS bucket, count(*) AS n
FROM queues AS q CROSS JOIN jobs AS j
WHERE j.queue = q.name AND j.state = 'done' AND j.finished_at >= :since
GROUP BY j.queue, bucket;

-- name: throughput_failed
SELECT queue, CAST(at / :bucket AS INTEGER) * :bucket AS bucket, count(*) AS n
FROM job_events WHERE event IN ('failed', 'lease_expired') AND at >= :since
GROUP BY queue, bucket;

-- name: throughput_dead
SELECT queue, CAST(dead_at / :bucket AS INTEGER) * :bucket AS bucket, count(*) AS n
FROM dead_letters WHERE dead_at >= :since GROUP BY queue, bucket;
