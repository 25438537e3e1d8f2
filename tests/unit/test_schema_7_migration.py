"""Schema 7 on a database that schema 6 filled: every job keeps its state, lease, result and
dependencies, ids are never handed out twice, and the new operations work on the old rows.

SQLite rebuilds ``jobs`` to widen its state CHECK (carrying AUTOINCREMENT's high-water mark);
PostgreSQL swaps the constraint. Both are opened at version 6 with rows in every state.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from persistent_queue import JobState, Queue
from persistent_queue.storage import queries as sql
from tests.migration_support import database_at_version
from tests.support import FakeClock

#: Rows in every state, written as schema 6 knew them (literals only: both dialects run them;
#: 1e12 is a lease end and a run time far in the future).
#: Job 6 was dead-lettered: its row left `jobs`, so the highest id in `jobs` is 5 while 6 is
#: taken (a new job must get 7, or redriving 6 would collide).
V6_ROWS = [
    "INSERT INTO queues (name, max_attempts, visibility_timeout, max_size, paused, created_at,"
    " updated_at) VALUES ('q', 3, 30, NULL, 0, 1, 1)",
    "INSERT INTO jobs (queue, state, priority, payload, attempts, available_at, created_at,"
    " updated_at) VALUES ('q', 'ready', 0, '1', 0, 1, 1, 1)",
    "INSERT INTO jobs (queue, state, priority, payload, attempts, available_at, created_at,"
    " updated_at) VALUES ('q', 'ready', 0, '2', 0, 1e12, 1, 1)",
    "INSERT INTO jobs (queue, state, priority, payload, attempts, available_at, lease_token,"
    " lease_expires_at, created_at, updated_at) VALUES"
    " ('q', 'leased', 0, '3', 1, 1e12, 'tok3', 1e12, 1, 1)",
    "INSERT INTO jobs (queue, state, priority, payload, attempts, available_at, created_at,"
    " updated_at, finished_at, result) VALUES ('q', 'done', 0, '4', 1, 1, 1, 2, 2, '\"ok\"')",
    "INSERT INTO jobs (queue, state, priority, payload, attempts, available_at, created_at,"
    " updated_at, depends_on) VALUES ('q', 'waiting', 0, '5', 0, 1, 1, 1, '[1]')",
    "INSERT INTO job_dependencies (job_id, depends_on) VALUES (5, 1)",
    "INSERT INTO jobs (queue, state, priority, payload, attempts, available_at, created_at,"
    " updated_at) VALUES ('q', 'ready', 0, '6', 0, 1, 1, 1)",
    "INSERT INTO dead_letters (id, queue, priority, payload, attempts, max_attempts, created_at,"
    " reason, last_error, dead_at) SELECT id, queue, priority, payload, 3, NULL, created_at,"
    " 'failed 3 of 3 attempts', 'boom', 3 FROM jobs WHERE id = 6",
    "DELETE FROM jobs WHERE id = 6",
    "INSERT INTO job_events (job_id, queue, at, event, attempt, detail)"
    " VALUES (6, 'q', 3, 'failed', 3, 'boom')",
]


@pytest.fixture
def v6_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    return database_at_version(request, backend, tmp_path, 6, V6_ROWS)


def test_a_version_6_database_with_jobs_in_every_state_is_migrated(
    v6_database: Path | str, backend: str
) -> None:
    with Queue(v6_database, clock=FakeClock(), durability="normal") as q:
        assert q.schema_version() == len(sql.migrations("sqlite")) >= 7  # and later ones
        states = {job_id: q.get_job(job_id).state for job_id in range(1, 7)}
        assert states == {1: JobState.READY, 2: JobState.READY, 3: JobState.LEASED,
                          4: JobState.DONE, 5: JobState.WAITING, 6: JobState.DEAD}
        done = q.get_job(4)
        assert (done.result, done.timeout, done.started_at, done.claimed_by, done.progress,
                done.cancel_requested, done.run_time) == ("ok", None, None, None, None,
                                                          False, None)
        assert [e.event for e in q.history(4)] == ["enqueued", "acked"]
        assert [(e.event, e.worker) for e in q.history(6)] == [
            ("enqueued", None), ("failed", None)]
        assert q.get_queue("q").timeout is None and q.stats("q").cancelled == 0

        assert q.enqueue("q", "new").id == 7  # 6 is the dead letter's, never reused
        q.ack(3, "tok3")  # the lease taken before the upgrade still holds
        first = q.dequeue("q", worker="after-upgrade")
        assert first is not None and (first.id, first.claimed_by) == (1, "after-upgrade")
        q.ack(first)
        assert q.get_job(5).state is JobState.READY  # the release trigger, rebuilt
        assert q.cancel(2, reason="old").state is JobState.CANCELLED
        assert q.redrive(6) == [6] and q.get_job(6).state is JobState.READY
        assert q.stats("q").cancelled == 1 and q.check_integrity() == []
    if backend == "sqlite":
        with closing(sqlite3.connect(v6_database)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'jobs'").fetchone()[0] == 7
            names = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE tbl_name = 'jobs'")}
            assert {"jobs_claim", "jobs_done", "jobs_cancelled", "jobs_waiting", "jobs_leases",
                    "jobs_dedup", "jobs_release_dependents", "jobs_lease_expired",
                    "jobs_forget_dependencies"} <= names
