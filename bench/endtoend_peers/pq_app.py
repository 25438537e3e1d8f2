"""This project: ``pq worker --handler bench.endtoend_peers.pq_app:handle`` and
``Queue.enqueue`` (SQLite file or PostgreSQL URL in ``BENCH_E2E_DB``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from bench.endtoend_peers.common import record
from persistent_queue import Job, Queue

QUEUE = "e2e"


def handle(job: Job) -> None:
    """The no-op task."""
    payload = job.payload
    record(payload["p"], payload["s"], payload["t"])


def producer() -> tuple[Callable[[int, int, int], Any], Callable[[], None]]:
    q = Queue(os.environ["BENCH_E2E_DB"],
              durability=os.environ.get("BENCH_E2E_DURABILITY", "full"))

    def send(phase: int, seq: int, t_enq_ns: int) -> None:
        q.enqueue(QUEUE, {"p": phase, "s": seq, "t": t_enq_ns})

    return send, q.close
