-- Schema version 8 of the PostgreSQL backend: flow control, mirroring
-- sqlite/sql/008_flow_control.sql (see there for what each column means).
ALTER TABLE queues
    ADD COLUMN concurrency integer CHECK (concurrency IS NULL OR concurrency >= 1),
    ADD COLUMN rate_count integer CHECK (rate_count IS NULL OR rate_count >= 1),
    ADD COLUMN rate_period double precision CHECK (rate_period IS NULL OR rate_period > 0),
    ADD COLUMN group_concurrency integer
        CHECK (group_concurrency IS NULL OR group_concurrency >= 1),
    ADD COLUMN group_rate_count integer
        CHECK (group_rate_count IS NULL OR group_rate_count >= 1),
    ADD COLUMN group_rate_period double precision
        CHECK (group_rate_period IS NULL OR group_rate_period > 0),
    ADD COLUMN limited integer NOT NULL DEFAULT 0 CHECK (limited IN (0, 1)),
    ADD COLUMN grouped integer NOT NULL DEFAULT 0 CHECK (grouped IN (0, 1)),
    ADD COLUMN rate_tat double precision,
    ADD COLUMN throttled bigint NOT NULL DEFAULT 0;

ALTER TABLE jobs ADD COLUMN group_key text;
ALTER TABLE dead_letters ADD COLUMN group_key text;

CREATE INDEX jobs_groups ON jobs (queue, group_key, id)
    WHERE group_key IS NOT NULL AND state IN ('ready', 'leased');

CREATE TABLE flow_groups (
    queue     text NOT NULL,
    group_key text NOT NULL,
    turn      bigint NOT NULL,
    tat       double precision,
    PRIMARY KEY (queue, group_key)
);
