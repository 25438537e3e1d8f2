"""Claim latency with a long history: does a claim stay flat with many done jobs in the table?

The history is written the fast way: ``enqueue_many`` in batches of 10,000, then one UPDATE
that marks those rows done (as ``ack`` would, without a million round trips). Then ``ready``
fresh jobs are enqueued and ``samples`` single claims are timed one by one (each acked
outside the timing). The same measure on a table without history is the baseline.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from persistent_queue import Queue

from .systems import PROJECT_QUEUE, make_payload
from .workloads import percentile

MARK_DONE = """
UPDATE jobs SET state = 'done', finished_at = :now, updated_at = :now
WHERE state = 'ready'
"""


def build(path: str, *, done: int, ready: int) -> None:
    """A database with ``done`` finished jobs followed by ``ready`` claimable ones."""
    with Queue(path, durability="normal") as q:
        for start in range(0, done, 10_000):
            count = min(10_000, done - start)
            q.enqueue_many(PROJECT_QUEUE, [make_payload(start + i) for i in range(count)])
    if done:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(MARK_DONE, {"now": time.time()})
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    with Queue(path, durability="normal") as q:
        for start in range(0, ready, 1000):
            count = min(1000, ready - start)
            q.enqueue_many(PROJECT_QUEUE, [make_payload(start + i) for i in range(count)])


def claim_latency(path: str, mode: str, samples: int) -> dict[str, float]:
    """Time ``samples`` single claims (ms); each job is acked after its timing."""
    timings: list[float] = []
    with Queue(path, durability=mode) as q:  # type: ignore[arg-type]
        q.ack(q.dequeue(PROJECT_QUEUE))  # type: ignore[arg-type]  # warm the connection
        for _ in range(samples):
            started = time.perf_counter()
            job = q.dequeue(PROJECT_QUEUE)
            timings.append((time.perf_counter() - started) * 1000)
            assert job is not None, "ran out of ready jobs"
            q.ack(job)
    return {"p50_ms": percentile(timings, 50), "p99_ms": percentile(timings, 99),
            "max_ms": max(timings)}


def run(workdir: str, *, done: int, ready: int, samples: int) -> dict[str, Any]:
    """Claim p50/p99 in both modes, without history and with ``done`` done jobs."""
    results: dict[str, Any] = {"done": done, "ready": ready, "samples": samples}
    for label, history in (("empty", 0), ("history", done)):
        path = f"{workdir}/history-{label}.db"
        build_started = time.perf_counter()
        build(path, done=history, ready=ready)
        results[f"{label}_build_s"] = time.perf_counter() - build_started
        for mode in ("normal", "full"):
            results[f"{label}_{mode}"] = claim_latency(path, mode, samples)
    return results
