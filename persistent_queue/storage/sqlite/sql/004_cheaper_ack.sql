-- Schema version 4: an ack runs the dependency release only for a job that has dependents.
--
-- A trigger's WHEN clause is evaluated inside its own sub-program, before the body opens any
-- cursor. The body of `jobs_release_dependents` is an UPDATE of `jobs`, which opens the table
-- and its indexes for writing each time it runs: on every acked job, although almost none has
-- dependents. Checking for one in the WHEN clause (one probe of `job_dependencies_parent`)
-- skips the body otherwise; the body itself is unchanged, so what is released is the same.
-- Measured: batch ack (100 per call) statement 12.4 -> 8.2 us per job (CPU).

DROP TRIGGER jobs_release_dependents;
CREATE TRIGGER jobs_release_dependents
AFTER UPDATE OF finished_at ON jobs
WHEN NEW.state = 'done' AND OLD.state != 'done'
  AND EXISTS (SELECT 1 FROM job_dependencies AS d WHERE d.depends_on = NEW.id)
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
