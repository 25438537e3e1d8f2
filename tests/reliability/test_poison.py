"""3. Poison job: a job whose handler kills its process ends dead-lettered; the rest flows.

Pass: the poison job is delivered exactly ``max_attempts`` (3) times (3 consumer deaths by
SIGKILL), then it is in the dead-letter table with attempts = 3; every other job is done once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.reliability.checker import check, final_rows, read_records
from tests.reliability.fleet import Fleet
from tests.reliability.soak import report, scale

pytestmark = [pytest.mark.slow]

JOBS = int(scale(300, 5000))
ATTEMPTS = 3


def test_poison_job_is_dead_lettered_after_max_attempts(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    db = tmp_path / "queue.db"
    with Queue(db, durability="normal") as q:
        q.create_queue("poison", visibility_timeout=1.0, max_attempts=20)
        poison = q.enqueue("poison", {"poison": True}, priority=5, max_attempts=ATTEMPTS).id
        normal = [j.id for j in q.enqueue_many("poison", [{"seconds": 0.005}] * JOBS)]
        fleet = Fleet(db, "poison", tmp_path, 2, subprocess_env)
        started = time.monotonic()
        fleet.restart_dead()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            fleet.restart_dead()
            dead = q.dead_letters("poison")
            if dead and q.stats("poison").done == JOBS:
                break
            time.sleep(0.1)
        fleet.wait_ready(q)
        assert set(fleet.stop()) <= {0}
        verdict = check([poison, *normal], read_records(fleet.acks), final_rows(q, "poison"))
        letters = q.dead_letters("poison")
    report("poison", seconds=round(time.monotonic() - started, 1),
           consumer_deaths=fleet.self_kills, **verdict.summary())
    assert [(d.id, d.attempts) for d in letters] == [(poison, ATTEMPTS)]
    assert fleet.self_kills == ATTEMPTS  # exactly max_attempts deliveries, each one fatal
    assert verdict.valid and verdict.done == JOBS and verdict.dead == 1
    assert verdict.extra_deliveries == 0
