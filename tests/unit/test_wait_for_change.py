"""How a waiting consumer notices commits on SQLite: the WAL-index header, then data_version.

Between checks a waiting ``dequeue`` compares the WAL-index header (the start of the ``-shm``
file, rewritten by every commit) with what it saw; ``PRAGMA data_version`` runs only when it
changed. These tests pin both halves: no commit is missed, and an idle wait does not query.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.support import in_thread

pytestmark = pytest.mark.sqlite_only


def data_version_queries(q: Queue) -> list[str]:
    """Record the ``PRAGMA data_version`` statements the calling thread's connection runs."""
    seen: list[str] = []
    conn: sqlite3.Connection = q.backend._conn()  # type: ignore[attr-defined]
    conn.set_trace_callback(lambda sql: seen.append(sql) if "data_version" in sql else None)
    return seen


def test_an_idle_wait_reads_the_header_instead_of_querying(tmp_path: Path) -> None:
    with Queue(tmp_path / "q.db", durability="normal", poll_interval=0.01) as q:
        q.enqueue("other", 1)  # the WAL and its index exist
        queries = data_version_queries(q)
        assert q.backend.wait_for_change(0.5, 0.01) is False
        # Some 50 polls; only the first asks SQLite (a checkpoint may rewrite the header once).
        assert 1 <= len(queries) <= 3, queries


def test_every_commit_of_another_connection_wakes_the_waiter(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    with Queue(db, durability="normal") as waiter, Queue(db, durability="normal") as writer:
        waiter.enqueue("other", 0)
        for n in range(30):
            waiting = threading.Event()

            def wait() -> bool:
                waiter.backend._conn()  # type: ignore[attr-defined]  # the baseline is taken
                waiting.set()
                return waiter.backend.wait_for_change(60, 0.01)  # type: ignore[no-any-return]

            thread, outcome = in_thread(wait)
            assert waiting.wait(30)
            writer.enqueue("work", n)
            thread.join(60)
            assert outcome.get("result") is True, (n, outcome)


def test_a_memory_queue_waits_on_data_version_alone() -> None:
    with Queue(":memory:", durability="normal", poll_interval=0.01) as q:
        q.enqueue("other", 1)
        queries = data_version_queries(q)
        assert q.backend.wait_for_change(0.2, 0.01) is False
        assert len(queries) >= 5  # no header to read: every poll asks SQLite
