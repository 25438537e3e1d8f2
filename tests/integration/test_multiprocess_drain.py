"""Real OS processes sharing one database (file or server): exactly-once draining, no lock errors.

Workers are separate Python interpreters started together (a file is the starting gun);
each reports what it did in a JSON file that the test reads afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.support import wait_for

pytestmark = pytest.mark.slow

# argv: db, go-file, report-file
PRELUDE = """
import json, os, sys, time
from pathlib import Path
from persistent_queue import Queue
db, go, report = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
q = Queue(db, durability="normal")
Path(f"{go}.ready.{os.getpid()}").touch()
deadline = time.monotonic() + 120
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("never started")
    time.sleep(0.005)
"""

DRAIN = PRELUDE + """
acked, lost, errors = [], 0, []
while True:
    try:
        job = q.dequeue("drain", wait=0.5)
        if job is None:
            if q.stats("drain").pending == 0:
                break
            continue
        q.ack(job)
        acked.append(job.id)
    except Exception as exc:  # every failure is reported, none is fatal
        if type(exc).__name__ == "LeaseLost":
            lost += 1
        else:
            errors.append(f"{type(exc).__name__}: {exc}")
report.write_text(json.dumps({"acked": acked, "lost": lost, "errors": errors}))
"""

HAMMER = PRELUDE + """
import random
rng = random.Random(os.getpid())
counts = {"enqueued": 0, "acked": 0, "nacked": 0, "extended": 0}
errors = []
for i in range(int(sys.argv[4])):
    try:
        if rng.random() < 0.2:
            counts["enqueued"] += len(q.enqueue_many("hammer", [i] * rng.randint(2, 20)))
        else:
            q.enqueue("hammer", {"pid": os.getpid(), "i": i}, priority=rng.randint(0, 3))
            counts["enqueued"] += 1
        for job in q.dequeue_many("hammer", rng.randint(1, 3)):
            roll = rng.random()
            if roll < 0.1:
                q.nack(job, "simulated failure", delay=0)
                counts["nacked"] += 1
            else:
                if roll < 0.2:
                    q.extend(job, 60)
                    counts["extended"] += 1
                q.ack(job)
                counts["acked"] += 1
        if i % 25 == 0:
            q.stats("hammer")
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
report.write_text(json.dumps({"counts": counts, "errors": errors}))
"""


def run_workers(db: Path | str, tmp_path: Path, env: dict[str, str], script: str, count: int,
                *extra: str) -> list[dict[str, object]]:
    """Start ``count`` processes, release them at once, return their reports."""
    go = tmp_path / "go"
    reports = [tmp_path / f"report-{n}.json" for n in range(count)]
    children = [
        subprocess.Popen([sys.executable, "-c", script, str(db), str(go), str(report), *extra],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for report in reports
    ]
    try:
        wait_for(lambda: len(list(tmp_path.glob("go.ready.*"))) == count
                 or any(c.poll() is not None for c in children),
                 timeout=120, message="workers to start")
        go.touch()
        for child in children:
            _, err = child.communicate(timeout=240)
            assert child.returncode == 0, err
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return [json.loads(report.read_text()) for report in reports]


def _sized(db: Path | str, sqlite: int, postgresql: int) -> int:
    """A workload size per backend: SQLite's single write lock is the contended resource
    and needs the longer run; on PostgreSQL every statement is a network round trip, and
    a smaller run overlaps the processes just as much."""
    return sqlite if isinstance(db, Path) else postgresql


def test_four_processes_drain_thousands_of_jobs_each_acked_exactly_once(
    db_path: Path | str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    total = _sized(db_path, sqlite=5000, postgresql=2000)
    with Queue(db_path, durability="normal") as q:
        q.create_queue("drain", visibility_timeout=600)  # no lease may expire mid-test
        ids = [job.id for start in range(0, total, 1000)
               for job in q.enqueue_many("drain", list(range(start, start + 1000)))]
    assert len(set(ids)) == total

    reports = run_workers(db_path, tmp_path, subprocess_env, DRAIN, 4)

    for report in reports:
        assert report["errors"] == [] and report["lost"] == 0
    # The drains overlapped. Not "every process took part": SQLite's write lock is not fair, and
    # on a loaded 2-core machine one process can find the queue drained by the time it runs.
    assert sum(1 for report in reports if report["acked"]) >= 2, "the processes overlapped"
    acked = [job_id for report in reports for job_id in report["acked"]]  # type: ignore[attr-defined]
    assert len(acked) == len(set(acked)), "a job was acked twice"
    assert set(acked) == set(ids), "a job was lost"
    with Queue(db_path) as q:
        stats = q.stats("drain")
        assert (stats.done, stats.pending, stats.dead) == (total, 0, 0)
        assert q.stats("drain").retries == 0
        assert all(job.attempts == 1 for job in q.list_jobs("drain", limit=total))


def test_eight_processes_hammering_never_see_a_locked_database(
    db_path: Path | str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    with Queue(db_path, durability="normal") as q:
        q.create_queue("hammer", visibility_timeout=600, max_attempts=100)

    iterations = _sized(db_path, sqlite=500, postgresql=200)
    reports = run_workers(db_path, tmp_path, subprocess_env, HAMMER, 8, str(iterations))

    errors = [error for report in reports for error in report["errors"]]  # type: ignore[attr-defined]
    assert errors == [], errors[:5]
    totals = {key: sum(r["counts"][key] for r in reports)  # type: ignore[index]
              for key in ("enqueued", "acked", "nacked", "extended")}
    assert totals["acked"] > 0 and totals["nacked"] > 0
    with Queue(db_path) as q:
        stats = q.stats("hammer")
        assert stats.done == totals["acked"]
        assert stats.done + stats.pending + stats.dead == totals["enqueued"]
        assert stats.leased == 0  # every claim was acked or nacked
