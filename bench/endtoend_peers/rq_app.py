"""RQ: ``rq worker e2e --url URL [-w rq.worker.SimpleWorker]`` and ``Queue.enqueue``
(``BENCH_E2E_REDIS``: the Redis URL)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from redis import Redis
from rq import Queue

from bench.endtoend_peers.common import record


def noop(phase: int, seq: int, t_enq_ns: int) -> None:
    record(phase, seq, t_enq_ns)


def producer() -> tuple[Callable[[int, int, int], Any], Callable[[], None]]:
    connection = Redis.from_url(os.environ["BENCH_E2E_REDIS"])
    queue = Queue("e2e", connection=connection)

    def send(phase: int, seq: int, t_enq_ns: int) -> None:
        queue.enqueue(noop, phase, seq, t_enq_ns)

    return send, connection.close
