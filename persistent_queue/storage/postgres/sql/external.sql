-- PostgreSQL's side of writing on a caller's own connection (`connection=`,
-- storage/postgres/external.py).

-- name: external_identity
-- Which database a connection reaches: its name, the server (the instant it started) and the
-- queue's jobs table as the connection's search_path finds it (NULL if it finds none). The
-- caller's connection and the queue's must agree on all three.
SELECT current_database() AS database, pg_postmaster_start_time() AS started,
       to_regclass('jobs')::oid AS jobs;
