"""What each durability mode syncs, observed in the statements a connection runs.

In full durability every acknowledged write commits with ``synchronous=FULL`` (an fsync of the
WAL). A lone claim is the exception: it commits with ``synchronous=NORMAL`` and the next
durable commit syncs the WAL up to and including it, so a claim costs no fsync of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistent_queue import DatabaseBusy, Queue

pytestmark = pytest.mark.sqlite_only

FULL, NORMAL = 2, 1


class Trace:
    """The statements run on a queue's connection (of this thread), in order."""

    def __init__(self, q: Queue) -> None:
        self.conn: sqlite3.Connection = q.backend.dialect.conn()  # type: ignore[attr-defined]
        self.initial = _synchronous(q)
        self.statements: list[str] = []
        self.conn.set_trace_callback(self.statements.append)

    def clear(self) -> None:
        self.statements.clear()

    def synchronous_at(self, fragment: str) -> int:
        """The ``synchronous`` setting in force when the statement containing ``fragment`` ran."""
        setting = self.initial
        for statement in self.statements:
            text = " ".join(statement.split())
            if text.startswith("PRAGMA synchronous = NORMAL"):
                setting = NORMAL
            elif text.startswith("PRAGMA synchronous = FULL"):
                setting = FULL
            elif fragment in text:
                return setting
        raise AssertionError(f"no statement containing {fragment!r} in {self.statements}")


@pytest.fixture
def full_queue(tmp_path: Path) -> Iterator[Queue]:
    q = Queue(tmp_path / "full.db", durability="full")
    yield q
    q.close()


def _synchronous(q: Queue) -> int:
    return int(q.backend.dialect.conn().execute("PRAGMA synchronous").fetchone()[0])  # type: ignore[attr-defined]


def test_full_durability_claims_without_fsync_and_syncs_the_ack(full_queue: Queue) -> None:
    full_queue.enqueue("work", 1)
    trace = Trace(full_queue)
    job = full_queue.dequeue("work")
    assert job is not None
    assert trace.synchronous_at("SET state = 'leased'") == NORMAL
    assert _synchronous(full_queue) == FULL  # restored for whatever comes next
    trace.clear()
    full_queue.ack(job)
    assert trace.synchronous_at("SET state = 'done'") == FULL


def test_full_durability_syncs_enqueue_nack_and_batch_ack(full_queue: Queue) -> None:
    trace = Trace(full_queue)
    full_queue.enqueue_many("work", [1, 2, 3])
    assert trace.synchronous_at("INSERT INTO jobs") == FULL
    jobs = full_queue.dequeue_many("work", 3)
    assert len(jobs) == 3
    trace.clear()
    full_queue.nack(jobs[0], error="boom")
    full_queue.ack_many(jobs[1:])
    assert all("PRAGMA synchronous = NORMAL" not in s for s in trace.statements)
    assert _synchronous(full_queue) == FULL


def test_a_claim_inside_atomic_commits_with_the_block(full_queue: Queue) -> None:
    full_queue.enqueue("work", 1)
    trace = Trace(full_queue)
    with full_queue.atomic():
        assert full_queue.dequeue("work") is not None
        full_queue.enqueue("work", 2)
    assert all("PRAGMA synchronous" not in s for s in trace.statements)
    assert _synchronous(full_queue) == FULL


def test_a_failed_claim_restores_full_sync(tmp_path: Path) -> None:
    q = Queue(tmp_path / "busy.db", durability="full", busy_timeout=0.05)
    q.enqueue("work", 1)
    blocker = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseBusy):
            q.dequeue("work")
        assert _synchronous(q) == FULL
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    job = q.dequeue("work")
    assert job is not None and job.attempts == 1  # nothing of the failed claim remained
    q.close()


def test_normal_durability_never_switches(tmp_path: Path) -> None:
    q = Queue(tmp_path / "normal.db", durability="normal")
    q.enqueue("work", 1)
    trace = Trace(q)
    job = q.dequeue("work")
    assert job is not None
    q.ack(job)
    assert all("PRAGMA synchronous" not in s for s in trace.statements)
    assert _synchronous(q) == NORMAL
    q.close()


def test_soft_claims_can_be_turned_off(full_queue: Queue) -> None:
    full_queue.backend.dialect.soft_claims = False  # type: ignore[attr-defined]
    full_queue.enqueue("work", 1)
    trace = Trace(full_queue)
    assert full_queue.dequeue("work") is not None
    assert trace.synchronous_at("SET state = 'leased'") == FULL


def test_a_connection_that_cannot_return_to_full_sync_is_dropped(full_queue: Queue) -> None:
    full_queue.enqueue("work", 1)
    broken = full_queue.backend.dialect.conn()  # type: ignore[attr-defined]
    restoring: list[bool] = []
    # Interrupt the statement that restores FULL (and only that one) on this connection.
    broken.set_trace_callback(
        lambda sql: restoring.append(sql.startswith("PRAGMA synchronous = FULL")))
    broken.set_progress_handler(lambda: 1 if restoring and restoring[-1] else 0, 1)
    job = full_queue.dequeue("work")
    assert restoring[-1]  # the restore was interrupted
    assert job is not None and job.attempts == 1  # the claim itself stands
    fresh = full_queue.backend.dialect.conn()  # type: ignore[attr-defined]
    assert fresh is not broken  # no later ack can commit on the connection left at NORMAL
    assert _synchronous(full_queue) == FULL
    full_queue.ack(job)
    assert full_queue.get_job(job.id).state.value == "done"
