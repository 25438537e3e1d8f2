"""8. Disk full: the database cannot grow (SQLite's ``max_page_count`` on every connection).

Pass: ``enqueue`` raises ``StorageFull`` with a clear message, ``enqueue_many`` stores none of
its batch, the API answers 507 (never 500), every job accepted before is still there and
claimable, work resumes once space returns, and ``integrity_check`` is ok.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from persistent_queue import Queue, StorageFull
from persistent_queue.api import create_app
from persistent_queue.sqlite_backend import SQLiteBackend
from tests.reliability.checker import integrity_check
from tests.reliability.soak import report

HEADROOM_PAGES = 40


def test_a_full_disk_is_a_clear_error_and_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "queue.db"
    with Queue(db) as q:
        q.create_queue("full")
        q.enqueue_many("full", [{"n": i} for i in range(100)])
    pages = sqlite3.connect(db).execute("PRAGMA page_count").fetchone()[0]
    limit = {"pages": pages + HEADROOM_PAGES}
    connect = SQLiteBackend._connect

    def small_disk(self: SQLiteBackend) -> sqlite3.Connection:
        conn = connect(self)
        conn.execute(f"PRAGMA max_page_count = {limit['pages']}")
        return conn

    monkeypatch.setattr(SQLiteBackend, "_connect", small_disk)
    with Queue(db) as q:
        accepted = [j.id for j in q.list_jobs("full", limit=1000)]
        with pytest.raises(StorageFull, match="full") as caught:
            for i in range(100_000):
                accepted.append(q.enqueue("full", {"n": i, "pad": "x" * 2000}).id)
        before = q.stats("full").ready
        with pytest.raises(StorageFull):
            q.enqueue_many("full", [{"pad": "y" * 2000}] * 50)
        assert q.stats("full").ready == before == len(accepted)  # nothing stored half
        with TestClient(create_app(q)) as client:
            answer = client.post("/enqueue", json={"queue": "full", "payload": "z" * 50_000})
        assert answer.status_code == 507, answer.text
        assert "full" in answer.text
        job = q.dequeue("full")  # consumers keep working on a full disk
        assert job is not None
        q.ack(job)
        limit["pages"] = 1_000_000_000
        for _pid, conn in list(q.backend._connections):  # type: ignore[attr-defined]
            conn.execute(f"PRAGMA max_page_count = {limit['pages']}")
        resumed = q.enqueue("full", {"pad": "x" * 2000})
        ids = {j.id for j in q.list_jobs("full", limit=10_000)}
        assert set(accepted) <= ids and resumed.id in ids
        with TestClient(create_app(q)) as client:
            assert client.post("/enqueue", json={"queue": "full", "payload": 1}).status_code == 201
    report("disk-full", accepted=len(accepted), error=str(caught.value)[:60])
    assert integrity_check(db) == "ok"
