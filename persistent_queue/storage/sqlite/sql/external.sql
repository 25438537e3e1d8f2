-- SQLite's side of writing on a caller's own connection (`connection=`,
-- storage/sqlite/external.py).

-- name: external_database_file
-- The file of the caller's main database ('' for one in memory or a temporary one): it must be
-- the queue's file (the same device and inode).
SELECT file FROM pragma_database_list WHERE name = 'main';

-- name: external_begin
-- A connection in sqlite3's implicit-transaction mode (its default isolation_level, or a
-- SQLAlchemy transaction) that has not written yet: its transaction begins here, as its own
-- next write would begin it, and its commit() ends it. IMMEDIATE: the write lock up front,
-- so the write waits on the busy handler instead of failing on a stale snapshot.
BEGIN IMMEDIATE;
