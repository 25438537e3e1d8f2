-- Schema version 9: operators' alerts per queue, and lost workers.
--
-- A queue's alert thresholds (NULL: no such alert). Queue.alerts() compares them with the
-- queue's state at one moment: `alert_depth` jobs ready now, `alert_oldest_age` seconds the
-- oldest ready job has waited, `alert_failure_rate` (0 < r <= 1) of the attempts that ended
-- in the last config.ALERT_FAILURE_WINDOW seconds failed, `alert_dead_letters` jobs in the
-- dead-letter table. An alert fires when its value reaches its threshold.
ALTER TABLE queues ADD COLUMN alert_depth INTEGER
    CHECK (alert_depth IS NULL OR alert_depth >= 1);
ALTER TABLE queues ADD COLUMN alert_oldest_age REAL
    CHECK (alert_oldest_age IS NULL OR alert_oldest_age > 0);
ALTER TABLE queues ADD COLUMN alert_failure_rate REAL
    CHECK (alert_failure_rate IS NULL OR (alert_failure_rate > 0 AND alert_failure_rate <= 1));
ALTER TABLE queues ADD COLUMN alert_dead_letters INTEGER
    CHECK (alert_dead_letters IS NULL OR alert_dead_letters >= 1);

-- A worker's stored state is what the process said: 'running' or 'stopped'. Whether a running
-- one is lost (its heartbeat stopped) is read from heartbeat_at by every reader; version 8
-- wrote 'dead' over the row instead (and took its last heartbeat for a stop).
UPDATE workers SET state = 'running', stopped_at = NULL WHERE state = 'dead';
