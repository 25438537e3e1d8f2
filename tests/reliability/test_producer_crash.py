"""5. Producer crashes: producers enqueueing with dedup keys are SIGKILLed every 500 ms and retry.

The HTTP API's ``/enqueue`` takes no dedup key yet, so this drives the library's idempotent
enqueue (``q.enqueue(..., dedup_key=...)``) from real producer processes killed with -9 and
restarted; each retries the key it has no confirmation for. Pass: every confirmed key is
stored exactly once, under the id the producer was given; every key is stored exactly once;
``integrity_check`` ok. Long: 4 producers x 5,000 keys; short: 3 x 300.
Each producer sends at most 100 keys a second.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.reliability.checker import all_jobs, integrity_check
from tests.reliability.soak import SOAK, report, scale

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600 if SOAK else 300)]

PRODUCERS = int(scale(3, 4))
KEYS = int(scale(300, 5000))
KILL_EVERY = 0.5
PAUSE = 0.01  # seconds between two sends of one producer


def test_killed_producers_store_each_key_once(tmp_path: Path,
                                              subprocess_env: dict[str, str]) -> None:
    db = tmp_path / "queue.db"
    rng = random.Random(5)
    with Queue(db) as q:
        q.create_queue("dedup")

    def spawn(index: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "tests.reliability.producer_child",
                                 str(db), f"p{index}", str(KEYS),
                                 str(tmp_path / f"confirmed-{index}.txt"), str(PAUSE)],
                                env=subprocess_env, stderr=subprocess.DEVNULL)

    procs = [spawn(i) for i in range(PRODUCERS)]
    kills, started = 0, time.monotonic()
    deadline = started + (3000 if SOAK else 240)
    while time.monotonic() < deadline:
        for i, proc in enumerate(procs):
            if proc.poll() is not None and proc.returncode != 0:
                procs[i] = spawn(i)
        if all(p.poll() == 0 for p in procs):
            break
        time.sleep(KILL_EVERY)
        victims = [p for p in procs if p.poll() is None]
        if victims:
            rng.choice(victims).kill()
            kills += 1
    assert all(p.poll() == 0 for p in procs), "producers did not finish"
    confirmed: dict[str, int] = {}
    for i in range(PRODUCERS):
        for line in (tmp_path / f"confirmed-{i}.txt").read_text().splitlines():
            key, job_id = line.split()
            assert key not in confirmed
            confirmed[key] = int(job_id)
    with Queue(db) as q:
        jobs = all_jobs(q, "dedup")
        stats = q.stats("dedup")
        integrity = integrity_check(db)
    stored = Counter(j.dedup_key for j in jobs)
    ids = {j.dedup_key: j.id for j in jobs}
    report("producer-crash", kills=kills, keys=len(confirmed), rows=len(jobs),
           dedup_hits=stats.dedup_hits, seconds=round(time.monotonic() - started, 1))
    assert len(confirmed) == PRODUCERS * KEYS
    assert [k for k, n in stored.items() if n != 1] == []
    assert len(jobs) == PRODUCERS * KEYS
    assert all(ids[key] == job_id for key, job_id in confirmed.items())
    assert kills >= 5
    assert integrity == "ok"
