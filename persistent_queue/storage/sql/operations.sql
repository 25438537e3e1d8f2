-- Operators' reads both dialects run: what is running now and the queues' alerts.

-- name: running_jobs
-- Jobs running now (leased, the lease live), longest running first: a range of jobs_leases
-- (lease_expires_at) WHERE state = 'leased', never the ready or done rows; the leases held
-- at once are bounded by the consumers' concurrency, so sorting them is cheap.
SELECT id, queue, headers, claimed_by, started_at, attempts, progress, progress_message,
       lease_expires_at, cancel_requested_at
FROM jobs
WHERE state = 'leased' AND lease_expires_at > :now
  AND (CAST(:queue AS TEXT) IS NULL OR queue = :queue)
ORDER BY started_at, id
LIMIT :limit;

-- name: alert_thresholds
SELECT name, alert_depth, alert_oldest_age, alert_failure_rate, alert_dead_letters
FROM queues
WHERE alert_depth IS NOT NULL OR alert_oldest_age IS NOT NULL
   OR alert_failure_rate IS NOT NULL OR alert_dead_letters IS NOT NULL;

-- name: alert_failed
-- Attempts that failed since :since (failed events and expired leases, as throughput counts
-- them), per queue: one range of job_events_at (at).
SELECT queue, count(*) AS n FROM job_events
WHERE at >= :since AND event IN ('failed', 'lease_expired')
GROUP BY queue;

-- name: alert_acked
-- Jobs acked since :since, per queue with a failure-rate alert: the window's range of that
-- queue's jobs_done (queue, finished_at).
SELECT q.name AS queue,
       (SELECT count(*) FROM jobs AS j
        WHERE j.queue = q.name AND j.state = 'done' AND j.finished_at >= :since) AS n
FROM queues AS q
WHERE q.alert_failure_rate IS NOT NULL;
