-- Schema version 9 of the PostgreSQL backend: operators' alerts per queue and lost workers,
-- mirroring sqlite/sql/009_operations.sql (see there for what each column means).
ALTER TABLE queues
    ADD COLUMN alert_depth bigint CHECK (alert_depth IS NULL OR alert_depth >= 1),
    ADD COLUMN alert_oldest_age double precision
        CHECK (alert_oldest_age IS NULL OR alert_oldest_age > 0),
    ADD COLUMN alert_failure_rate double precision
        CHECK (alert_failure_rate IS NULL OR (alert_failure_rate > 0 AND alert_failure_rate <= 1)),
    ADD COLUMN alert_dead_letters bigint
        CHECK (alert_dead_letters IS NULL OR alert_dead_letters >= 1);

UPDATE workers SET state = 'running', stopped_at = NULL WHERE state = 'dead';
