"""1. kill -9 storm: real consumers SIGKILLed at random while they work; nothing is lost.

Pass: lost = 0, unexpected = 0, every job done exactly once in the database (attempts
counted), extra deliveries <= kills, ``integrity_check`` ok. Long: 20,000 jobs, 8 consumers,
a kill every 200 ms for the whole run; short: 1,000 jobs, 4 consumers, 6 s of kills.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.reliability.checker import check, final_rows, integrity_check, read_records
from tests.reliability.fleet import Fleet
from tests.reliability.soak import SOAK, report, scale

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600 if SOAK else 300)]

JOBS = int(scale(1000, 20_000))
CONSUMERS = int(scale(4, 8))
KILL_SECONDS = float(scale(6, 10_000))  # long: kill until the queue is drained
KILL_EVERY = 0.2


def test_kill_storm_loses_nothing(
    db_path: Path | str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    rng = random.Random(8)
    db = db_path
    with Queue(db, durability="normal") as q:
        q.create_queue("storm", visibility_timeout=2.0, max_attempts=1000)
        enqueued = [job.id for start in range(0, JOBS, 1000)
                    for job in q.enqueue_many("storm", [{"seconds": 0.01}] *
                                              min(1000, JOBS - start))]
        fleet = Fleet(db, "storm", tmp_path, CONSUMERS, subprocess_env)
        started = time.monotonic()
        fleet.restart_dead()
        kill_until = started + KILL_SECONDS
        while time.monotonic() < kill_until and q.stats("storm").done < JOBS:
            time.sleep(KILL_EVERY)
            fleet.kill_one(rng)
        deadline = time.monotonic() + 600
        while q.stats("storm").done < JOBS and time.monotonic() < deadline:
            fleet.restart_dead()
            time.sleep(0.2)
        fleet.wait_ready(q)
        codes = fleet.stop()
        seconds = time.monotonic() - started
        verdict = check(enqueued, read_records(fleet.acks), final_rows(q, "storm"))
        integrity = integrity_check(db)
    report("kill-storm", seconds=round(seconds, 1), kills=fleet.kills, **verdict.summary())
    assert verdict.valid, verdict.summary()
    assert verdict.done == JOBS and verdict.pending == 0 and verdict.dead == 0
    assert verdict.extra_deliveries <= fleet.kills
    assert fleet.kills >= (5 if not SOAK else 100)
    assert set(codes) <= {0}
    assert integrity == "ok"
