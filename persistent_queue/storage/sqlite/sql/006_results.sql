-- Schema version 6: a job's result, stored by the ack that finishes it.
--
-- `result` is the JSON text of what a task returned (NULL for a job acked without one, and
-- for every unfinished job). It is written by the same UPDATE that marks the job done, so a
-- result is never seen without its ack, nor an ack (of a task) without its result. It lives
-- as long as the done job does: cleanup deletes done jobs older than --older-than, and done
-- jobs with a result older than the queue's result_ttl.
ALTER TABLE jobs ADD COLUMN result TEXT;
