"""8. Disk full: the database cannot grow (SQLite's ``max_page_count`` on every connection).

Pass: ``enqueue`` raises ``StorageFull`` with a clear message, ``enqueue_many`` stores none of
its batch, the API answers 507 (never 500), every job accepted before is still there and
claimable, work resumes once space returns, and ``integrity_check`` is ok. While the disk
reserve is released (a consumer found the disk full) and cannot be put back, new jobs are
refused and claims and acks go on. (A real full disk: ``test_disk_full_tmpfs.py``.)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from persistent_queue import Queue, StorageFull
from persistent_queue.api import create_app
from persistent_queue.storage.sqlite import SQLiteDialect, disk_reserve
from persistent_queue.storage.sqlite.disk_reserve import DiskReserve
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
    connect = SQLiteDialect._connect

    def small_disk(self: SQLiteDialect) -> sqlite3.Connection:
        conn = connect(self)
        conn.execute(f"PRAGMA max_page_count = {limit['pages']}")
        return conn

    monkeypatch.setattr(SQLiteDialect, "_connect", small_disk)
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
        for _pid, conn in list(q.backend.dialect._connections):  # type: ignore[attr-defined]
            conn.execute(f"PRAGMA max_page_count = {limit['pages']}")
        resumed = q.enqueue("full", {"pad": "x" * 2000})
        ids = {j.id for j in q.list_jobs("full", limit=10_000)}
        assert set(accepted) <= ids and resumed.id in ids
        with TestClient(create_app(q)) as client:
            assert client.post("/enqueue", json={"queue": "full", "payload": 1}).status_code == 201
    report("disk-full", accepted=len(accepted), error=str(caught.value)[:60])
    assert integrity_check(db) == "ok"


def test_new_jobs_wait_for_the_disk_reserve_while_claims_and_acks_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "queue.db"
    with Queue(db) as q:
        reserve = q.backend.dialect.reserve  # type: ignore[attr-defined]
        assert reserve.path.stat().st_blocks * 512 >= reserve.size()  # real blocks, not sparse
        q.enqueue_many("full", [{"n": i} for i in range(3)])
        size, room = reserve.size(), {"free": 0}
        monkeypatch.setattr(DiskReserve, "_room", lambda self: (size, room["free"]))
        monkeypatch.setattr(disk_reserve, "RETRY_INTERVAL", 0.0)
        reserve.release()  # as a consumer does on a full disk
        with pytest.raises(StorageFull, match="no room left for new jobs"):
            q.enqueue("full", {"n": 3})
        with pytest.raises(StorageFull):
            q.enqueue_many("full", [{"n": 4}, {"n": 5}])
        job = q.dequeue("full")
        assert job is not None
        q.ack(job)
        room["free"] = 2 * size  # space is back: the reserve first, then new jobs
        assert q.enqueue("full", {"n": 6}).id
        assert reserve.in_place()
        assert [j.payload["n"] for j in q.list_jobs("full", state="ready", newest_first=False)
                ] == [1, 2, 6]
