-- Statements both dialects run on a caller's own connection (`connection=`, storage/external.py):
-- the queue's write inside the caller's transaction is wrapped in a savepoint, so that a
-- write that fails (LeaseLost, QueueFull, a bad dependency) leaves the caller's transaction
-- exactly as it was, and on PostgreSQL still usable.

-- name: external_savepoint
SAVEPOINT persistent_queue_write;

-- name: external_release
RELEASE SAVEPOINT persistent_queue_write;

-- name: external_rollback
ROLLBACK TO SAVEPOINT persistent_queue_write;
