-- Schema version 3 of the PostgreSQL backend: fewer indexes to write on the hot path,
-- mirroring sql/sqlite/003_fewer_indexes.sql.
--
-- `state` is in the predicates of the partial indexes, so no claim or ack is a HOT update:
-- each one adds an entry to every index of `jobs` whose predicate the new row meets. Every
-- enqueue wrote `jobs_queue_state` and `jobs_created`, and so did every claim and every ack.
-- Both served only reads by operators (stats, listing, cleanup, throughput, purge, queue
-- deletion), which now read indexes that hold only the rows they are about:
--   unfinished ready/leased jobs  jobs_claim   (queue, priority DESC, id)   (as before)
--   waiting jobs                  jobs_waiting (queue)              WHERE state = 'waiting'
--   done jobs                     jobs_done    (queue, finished_at) WHERE state = 'done'
-- An enqueue now writes the primary key and jobs_claim; a claim also jobs_leases; an ack
-- writes jobs_done instead of jobs_finished (one done index either way).

DROP INDEX IF EXISTS jobs_queue_state;
DROP INDEX IF EXISTS jobs_created;
DROP INDEX IF EXISTS jobs_finished;
CREATE INDEX jobs_waiting ON jobs (queue) WHERE state = 'waiting';
CREATE INDEX jobs_done ON jobs (queue, finished_at) WHERE state = 'done';
