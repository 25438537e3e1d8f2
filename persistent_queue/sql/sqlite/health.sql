-- Health checks run by operators and the HTTP API.

-- name: quick_check
-- O(N) structural check of every table and index (cheaper than integrity_check); one row
-- per problem found, or a single row 'ok'.
PRAGMA quick_check;
