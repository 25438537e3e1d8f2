"""7. Long reader: a read transaction held open while jobs flow, then released.

While the reader pins its snapshot no checkpoint can reset the WAL, so it grows; ``pq doctor
--json``, ``database_health`` and ``/healthz`` report its size. Pass: the WAL reported grows
past 2 MiB while the reader is open; after it ends and work goes on, the WAL file is back
under 8 MB with no manual step (the background checkpoint thread empties it once the work
stops); ``integrity_check`` ok. Long: 100,000 jobs; short: 8,000.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from persistent_queue import Queue
from persistent_queue.api import create_app
from persistent_queue.health import database_health
from tests.reliability.checker import integrity_check
from tests.reliability.soak import SOAK, report, scale
from tests.support import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600 if SOAK else 300)]

JOBS = int(scale(8_000, 100_000))
BATCH = 500
MB = 1_000_000


def _flow(q: Queue, jobs: int) -> None:
    payload = {"body": "x" * 200}
    for _ in range(jobs // BATCH):
        q.enqueue_many("flow", [payload] * BATCH)
        q.ack_many(q.dequeue_many("flow", BATCH))


def _doctor_wal(db: Path, env: dict[str, str]) -> int:
    out = subprocess.run([sys.executable, "-m", "persistent_queue", "--db", str(db), "doctor",
                          "--quick", "--json"], capture_output=True, text=True, env=env,
                         timeout=120)
    return int(json.loads(out.stdout)["wal_bytes"])


def test_wal_grows_under_a_long_reader_and_shrinks_after(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    db = tmp_path / "queue.db"
    with Queue(db, durability="normal") as q:
        q.create_queue("flow")
        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM jobs").fetchone()  # pins the snapshot
        _flow(q, JOBS)
        held = database_health(q).wal_bytes
        doctor = _doctor_wal(db, subprocess_env)
        with TestClient(create_app(q)) as client:
            checks = client.get("/healthz").json()
        reader.execute("ROLLBACK")
        reader.close()
        _flow(q, 2 * BATCH)  # ordinary work after the reader is gone
        # The checkpoint thread copies the rest and empties the WAL once the work stops.
        wait_for(lambda: database_health(q).wal_bytes < 8 * MB, timeout=60,
                 message="the WAL back under 8 MB")
        after = database_health(q).wal_bytes
        integrity = integrity_check(db)
    report("long-reader", jobs=JOBS, wal_held_mb=round(held / MB, 1),
           doctor_wal_mb=round(doctor / MB, 1), wal_after_mb=round(after / MB, 2))
    assert held > 2 * 1024 * 1024
    assert doctor >= held * 0.9
    assert checks["checks"]["wal"]["bytes"] >= held * 0.9
    assert after < 8 * MB
    assert integrity == "ok"
