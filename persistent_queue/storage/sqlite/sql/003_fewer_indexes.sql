-- Schema version 3: fewer indexes to write, and fewer triggers to run, on the hot path.
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

-- Triggers are compiled only into the statements that set a column they name. The expired-
-- lease event needs only the claim (the one statement that sets `attempts` on a leased job and
-- keeps it leased), not every ack; releasing dependents needs only the ack (the one statement
-- that sets `finished_at`), not every claim.
DROP TRIGGER jobs_lease_expired;
CREATE TRIGGER jobs_lease_expired
AFTER UPDATE OF attempts ON jobs
WHEN OLD.state = 'leased' AND NEW.state = 'leased'
BEGIN
    INSERT INTO job_events (job_id, queue, at, event, attempt, detail)
    VALUES (NEW.id, NEW.queue, NEW.updated_at, 'lease_expired', OLD.attempts,
            'lease expired before ack (consumer crashed, hung or too slow)');
END;

DROP TRIGGER jobs_release_dependents;
CREATE TRIGGER jobs_release_dependents
AFTER UPDATE OF finished_at ON jobs
WHEN NEW.state = 'done' AND OLD.state != 'done'
BEGIN
    UPDATE jobs
    SET state = 'ready', updated_at = NEW.updated_at
    WHERE id IN (SELECT d.job_id FROM job_dependencies AS d WHERE d.depends_on = NEW.id)
      AND state = 'waiting'
      AND NOT EXISTS (
          SELECT 1 FROM job_dependencies AS e
          LEFT JOIN jobs AS p ON p.id = e.depends_on
          LEFT JOIN dead_letters AS x ON x.id = e.depends_on
          WHERE e.job_id = jobs.id
            AND ((p.id IS NOT NULL AND p.state != 'done') OR x.id IS NOT NULL)
      );
END;
