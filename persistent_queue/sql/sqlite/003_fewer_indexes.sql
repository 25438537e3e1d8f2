-- Schema version 3: fewer indexes to write on the hot path.
--
-- Every enqueue wrote `jobs_created`; every claim and ack rewrote `jobs_queue_state`. Both
-- served only reads by operators (stats, listing, cleanup, throughput), which are now served
-- by indexes that hold only the rows they are about:
--   unfinished ready/leased jobs  jobs_claim   (queue, priority DESC, id)   (as before)
--   waiting jobs                  jobs_waiting (queue)       WHERE state = 'waiting'
--   done jobs                     jobs_done    (queue, finished_at, state) WHERE state = 'done'
-- An ack writes jobs_done instead of jobs_finished (one done index either way); an enqueue
-- writes only the table and jobs_claim; a claim no longer moves an entry of jobs_queue_state.

DROP INDEX IF EXISTS jobs_queue_state;
DROP INDEX IF EXISTS jobs_created;
DROP INDEX IF EXISTS jobs_finished;
CREATE INDEX jobs_waiting ON jobs (queue) WHERE state = 'waiting';
-- `state` is constant here; it is in the entries so that counting reads the index alone.
CREATE INDEX jobs_done ON jobs (queue, finished_at, state) WHERE state = 'done';
