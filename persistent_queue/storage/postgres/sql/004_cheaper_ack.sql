-- Schema version 4: the cheaper ack. On SQLite this added a WHEN clause so that the trigger
-- releasing a finished job's dependents runs its body (an UPDATE of `jobs`, which opens the
-- table for writing) only for a job that has dependents. PostgreSQL needs no change: its
-- release trigger (002_workflows.sql) is a PL/pgSQL loop whose first statement, one probe of
-- `job_dependencies_parent`, finds no dependent and ends. An explicit no-op, so that each
-- migration number means the same change in both dialects.
SELECT 1;
