-- Schema version 4 of the PostgreSQL backend: a schedule whose cron expression has run out of
-- ticks is finished, mirroring sql/sqlite/005_finished_schedules.sql.
--
-- A cron with a year field (`0 0 1 1 * 0 2030`) has a last tick. Firing it leaves no next tick
-- to move `next_run_at` to: the firing transaction sets `finished_at` instead (and leaves
-- `next_run_at` on the last tick). A finished schedule is never due again and is listed as
-- finished; declaring it again with a change makes it active again.
ALTER TABLE schedules ADD COLUMN finished_at double precision;
