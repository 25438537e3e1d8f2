-- The PostgreSQL schema that migrations 001..009 build, in one file (a snapshot: never run
-- by the library; from pg_dump --schema-only). tests/postgres/test_pg_schema_snapshot.py
-- checks that the migrations, applied in order to an empty database, give exactly the
-- schema this file gives; regenerate it with a new migration.

CREATE FUNCTION jobs_forget_dependencies() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    DELETE FROM job_dependencies WHERE job_id = OLD.id;
    RETURN NULL;
END;
$$;

CREATE FUNCTION jobs_lease_expired() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO job_events (job_id, queue, at, event, attempt, detail, worker, run_time)
    VALUES (NEW.id, NEW.queue, NEW.updated_at, 'lease_expired', OLD.attempts,
            'lease expired before ack (consumer crashed, hung or too slow)',
            OLD.claimed_by, NEW.updated_at - OLD.started_at);
    RETURN NULL;
END;
$$;

CREATE FUNCTION jobs_release_dependents() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    child bigint;
    child_queue text;
BEGIN
    FOR child IN
        SELECT d.job_id FROM job_dependencies AS d WHERE d.depends_on = NEW.id ORDER BY d.job_id
    LOOP
        SELECT queue INTO child_queue FROM jobs WHERE id = child AND state = 'waiting'
        FOR UPDATE;
        CONTINUE WHEN NOT FOUND;  -- released already, dead-lettered, or cleaned up
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM job_dependencies AS e
            LEFT JOIN jobs AS p ON p.id = e.depends_on
            LEFT JOIN dead_letters AS x ON x.id = e.depends_on
            WHERE e.job_id = child
              AND ((p.id IS NOT NULL AND p.state <> 'done') OR x.id IS NOT NULL)
        );
        UPDATE jobs SET state = 'ready', updated_at = NEW.updated_at WHERE id = child;
        -- Identical notifications of one transaction are delivered once.
        PERFORM pg_notify('persistent_queue', child_queue);
    END LOOP;
    RETURN NULL;
END;
$$;

CREATE TABLE dead_letters (
    id bigint NOT NULL,
    queue text NOT NULL,
    priority integer NOT NULL,
    payload text NOT NULL,
    headers text,
    attempts integer NOT NULL,
    max_attempts integer,
    created_at double precision NOT NULL,
    reason text NOT NULL,
    last_error text,
    dead_at double precision NOT NULL,
    dedup_key text,
    depends_on text,
    timeout double precision,
    started_at double precision,
    claimed_by text,
    group_key text
);

CREATE TABLE flow_groups (
    queue text NOT NULL,
    group_key text NOT NULL,
    turn bigint NOT NULL,
    tat double precision
);

CREATE TABLE job_dependencies (
    job_id bigint NOT NULL,
    depends_on bigint NOT NULL
);

CREATE TABLE job_events (
    id bigint NOT NULL,
    job_id bigint NOT NULL,
    queue text NOT NULL,
    at double precision NOT NULL,
    event text NOT NULL,
    attempt integer,
    detail text,
    worker text,
    run_time double precision
);

ALTER TABLE job_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME job_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE jobs (
    id bigint NOT NULL,
    queue text NOT NULL,
    state text NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    payload text NOT NULL,
    headers text,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer,
    available_at double precision NOT NULL,
    lease_token text,
    lease_expires_at double precision,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    finished_at double precision,
    last_error text,
    dedup_key text,
    depends_on text,
    result text,
    timeout double precision,
    started_at double precision,
    claimed_by text,
    progress double precision,
    progress_message text,
    cancel_requested_at double precision,
    cancel_reason text,
    group_key text,
    CONSTRAINT jobs_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT jobs_check CHECK (((state = 'leased'::text) = (lease_token IS NOT NULL))),
    CONSTRAINT jobs_max_attempts_check CHECK (((max_attempts IS NULL) OR (max_attempts >= 1))),
    CONSTRAINT jobs_progress_check CHECK (((progress IS NULL) OR ((progress >= (0)::double precision) AND (progress <= (1)::double precision)))),
    CONSTRAINT jobs_state_check CHECK ((state = ANY (ARRAY['waiting'::text, 'ready'::text, 'leased'::text, 'done'::text, 'cancelled'::text]))),
    CONSTRAINT jobs_timeout_check CHECK (((timeout IS NULL) OR (timeout > (0)::double precision)))
);

ALTER TABLE jobs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME jobs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE kv (
    key text NOT NULL,
    value text NOT NULL,
    updated_at double precision NOT NULL
);

CREATE TABLE queues (
    name text NOT NULL,
    max_attempts integer NOT NULL,
    visibility_timeout double precision NOT NULL,
    max_size integer,
    paused integer DEFAULT 0 NOT NULL,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    dedup_hits bigint DEFAULT 0 NOT NULL,
    rejected_full bigint DEFAULT 0 NOT NULL,
    timeout double precision,
    concurrency integer,
    rate_count integer,
    rate_period double precision,
    group_concurrency integer,
    group_rate_count integer,
    group_rate_period double precision,
    limited integer DEFAULT 0 NOT NULL,
    grouped integer DEFAULT 0 NOT NULL,
    rate_tat double precision,
    throttled bigint DEFAULT 0 NOT NULL,
    alert_depth bigint,
    alert_oldest_age double precision,
    alert_failure_rate double precision,
    alert_dead_letters bigint,
    CONSTRAINT queues_alert_dead_letters_check CHECK (((alert_dead_letters IS NULL) OR (alert_dead_letters >= 1))),
    CONSTRAINT queues_alert_depth_check CHECK (((alert_depth IS NULL) OR (alert_depth >= 1))),
    CONSTRAINT queues_alert_failure_rate_check CHECK (((alert_failure_rate IS NULL) OR ((alert_failure_rate > (0)::double precision) AND (alert_failure_rate <= (1)::double precision)))),
    CONSTRAINT queues_alert_oldest_age_check CHECK (((alert_oldest_age IS NULL) OR (alert_oldest_age > (0)::double precision))),
    CONSTRAINT queues_concurrency_check CHECK (((concurrency IS NULL) OR (concurrency >= 1))),
    CONSTRAINT queues_group_concurrency_check CHECK (((group_concurrency IS NULL) OR (group_concurrency >= 1))),
    CONSTRAINT queues_group_rate_count_check CHECK (((group_rate_count IS NULL) OR (group_rate_count >= 1))),
    CONSTRAINT queues_group_rate_period_check CHECK (((group_rate_period IS NULL) OR (group_rate_period > (0)::double precision))),
    CONSTRAINT queues_grouped_check CHECK ((grouped = ANY (ARRAY[0, 1]))),
    CONSTRAINT queues_limited_check CHECK ((limited = ANY (ARRAY[0, 1]))),
    CONSTRAINT queues_max_attempts_check CHECK ((max_attempts >= 1)),
    CONSTRAINT queues_max_size_check CHECK (((max_size IS NULL) OR (max_size >= 1))),
    CONSTRAINT queues_paused_check CHECK ((paused = ANY (ARRAY[0, 1]))),
    CONSTRAINT queues_rate_count_check CHECK (((rate_count IS NULL) OR (rate_count >= 1))),
    CONSTRAINT queues_rate_period_check CHECK (((rate_period IS NULL) OR (rate_period > (0)::double precision))),
    CONSTRAINT queues_timeout_check CHECK (((timeout IS NULL) OR (timeout > (0)::double precision))),
    CONSTRAINT queues_visibility_timeout_check CHECK ((visibility_timeout > (0)::double precision))
);

CREATE TABLE schedules (
    name text NOT NULL,
    queue text NOT NULL,
    payload text NOT NULL,
    headers text,
    priority integer DEFAULT 0 NOT NULL,
    max_attempts integer,
    every double precision,
    cron text,
    timezone text DEFAULT 'UTC'::text NOT NULL,
    next_run_at double precision NOT NULL,
    last_run_at double precision,
    last_job_id bigint,
    runs bigint DEFAULT 0 NOT NULL,
    missed bigint DEFAULT 0 NOT NULL,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    finished_at double precision,
    CONSTRAINT schedules_check CHECK (((every IS NULL) <> (cron IS NULL))),
    CONSTRAINT schedules_every_check CHECK (((every IS NULL) OR (every > (0)::double precision))),
    CONSTRAINT schedules_max_attempts_check CHECK (((max_attempts IS NULL) OR (max_attempts >= 1)))
);

CREATE TABLE subscriptions (
    topic text NOT NULL,
    queue text NOT NULL,
    created_at double precision NOT NULL
);

CREATE TABLE workers (
    id text NOT NULL,
    kind text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    queues text DEFAULT '[]'::text NOT NULL,
    state text DEFAULT 'running'::text NOT NULL,
    started_at double precision NOT NULL,
    heartbeat_at double precision NOT NULL,
    stopped_at double precision,
    processed bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL
);

ALTER TABLE ONLY dead_letters
    ADD CONSTRAINT dead_letters_pkey PRIMARY KEY (id);

ALTER TABLE ONLY flow_groups
    ADD CONSTRAINT flow_groups_pkey PRIMARY KEY (queue, group_key);

ALTER TABLE ONLY job_dependencies
    ADD CONSTRAINT job_dependencies_pkey PRIMARY KEY (job_id, depends_on);

ALTER TABLE ONLY job_events
    ADD CONSTRAINT job_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY kv
    ADD CONSTRAINT kv_pkey PRIMARY KEY (key);

ALTER TABLE ONLY queues
    ADD CONSTRAINT queues_pkey PRIMARY KEY (name);

ALTER TABLE ONLY schedules
    ADD CONSTRAINT schedules_pkey PRIMARY KEY (name);

ALTER TABLE ONLY subscriptions
    ADD CONSTRAINT subscriptions_pkey PRIMARY KEY (topic, queue);

ALTER TABLE ONLY workers
    ADD CONSTRAINT workers_pkey PRIMARY KEY (id);

CREATE INDEX dead_letters_queue ON dead_letters USING btree (queue, id);

CREATE INDEX job_dependencies_parent ON job_dependencies USING btree (depends_on, job_id);

CREATE INDEX job_events_at ON job_events USING btree (at);

CREATE INDEX job_events_job ON job_events USING btree (job_id, id);

CREATE INDEX jobs_cancelled ON jobs USING btree (queue, finished_at) WHERE (state = 'cancelled'::text);

CREATE INDEX jobs_claim ON jobs USING btree (queue, priority DESC, id) WHERE (state = ANY (ARRAY['ready'::text, 'leased'::text]));

CREATE INDEX jobs_dedup ON jobs USING btree (queue, dedup_key, id) WHERE (dedup_key IS NOT NULL);

CREATE INDEX jobs_done ON jobs USING btree (queue, finished_at) WHERE (state = 'done'::text);

CREATE INDEX jobs_groups ON jobs USING btree (queue, group_key, id) WHERE ((group_key IS NOT NULL) AND (state = ANY (ARRAY['ready'::text, 'leased'::text])));

CREATE INDEX jobs_leases ON jobs USING btree (lease_expires_at) WHERE (state = 'leased'::text);

CREATE INDEX jobs_waiting ON jobs USING btree (queue) WHERE (state = 'waiting'::text);

CREATE INDEX schedules_due ON schedules USING btree (next_run_at);

CREATE TRIGGER jobs_forget_dependencies AFTER DELETE ON jobs FOR EACH ROW WHEN (((old.state = ANY (ARRAY['done'::text, 'cancelled'::text])) AND (old.depends_on IS NOT NULL))) EXECUTE FUNCTION jobs_forget_dependencies();

CREATE TRIGGER jobs_lease_expired AFTER UPDATE OF lease_token ON jobs FOR EACH ROW WHEN (((old.state = 'leased'::text) AND (new.state = 'leased'::text) AND (old.lease_token IS DISTINCT FROM new.lease_token))) EXECUTE FUNCTION jobs_lease_expired();

CREATE TRIGGER jobs_release_dependents AFTER UPDATE OF state ON jobs FOR EACH ROW WHEN (((new.state = 'done'::text) AND (old.state <> 'done'::text))) EXECUTE FUNCTION jobs_release_dependents();
