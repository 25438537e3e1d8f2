"""9. History growth: many done rows do not slow the claim; cleanup gives the space back.

Pass: the median claim+ack latency with the done history in the table is at most 3x the
latency on an empty table (reported: the ratio); after 10 fill/drain cycles, each followed
by ``cleanup(vacuum=True)``, the file is within 10% of its size after the first cycle.
Long: 1,000,000 done rows, cycles of 100,000 jobs; short: 50,000 rows, cycles of 5,000.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.reliability.checker import integrity_check
from tests.reliability.soak import SOAK, report, scale

pytestmark = [pytest.mark.slow, pytest.mark.timeout(7200 if SOAK else 300)]

HISTORY = int(scale(50_000, 1_000_000))
CYCLE = int(scale(5_000, 100_000))
CYCLES = 10
BATCH = 1000


def _fill_and_drain(q: Queue, count: int) -> None:
    payload = {"body": "x" * 100}
    for start in range(0, count, BATCH):
        q.enqueue_many("hist", [payload] * min(BATCH, count - start))
        q.ack_many(q.dequeue_many("hist", BATCH))


def _claim_latency(q: Queue, samples: int = 200) -> float:
    q.enqueue_many("hist", [{"probe": True}] * samples)
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        job = q.dequeue("hist")
        assert job is not None
        q.ack(job)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def test_claim_latency_stays_flat_and_cleanup_returns_space(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    with Queue(db, durability="normal") as q:
        q.create_queue("hist")
        empty = _claim_latency(q)
        _fill_and_drain(q, HISTORY)
        full = _claim_latency(q)
        assert q.stats("hist").done >= HISTORY
        sizes = []
        for _ in range(CYCLES):
            q.cleanup(0, vacuum=True)
            _fill_and_drain(q, CYCLE)
            q.cleanup(0, vacuum=True)
            sizes.append(db.stat().st_size)
        ratio = full / empty
        growth = sizes[-1] / sizes[0]
        report("history", done_rows=HISTORY, claim_ms_empty=round(empty * 1000, 3),
               claim_ms_history=round(full * 1000, 3), ratio=round(ratio, 2),
               size_first_mb=round(sizes[0] / 1e6, 2), size_last_mb=round(sizes[-1] / 1e6, 2),
               growth=round(growth, 3))
        assert ratio <= 3.0
        assert growth <= 1.10
    assert integrity_check(db) == "ok"
