"""Celery on Redis with late acknowledgement: ``celery -A bench.endtoend_peers.celery_app
worker -c 2`` (prefork) and ``task.delay`` (``BENCH_E2E_REDIS``: the Redis URL)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from celery import Celery

from bench.endtoend_peers.common import record

app = Celery("e2e", broker=os.environ.get("BENCH_E2E_REDIS", "redis://127.0.0.1"))
app.conf.update(task_acks_late=True, task_ignore_result=True, task_default_queue="e2e",
                broker_connection_retry_on_startup=True)


@app.task(name="e2e.noop")
def noop(phase: int, seq: int, t_enq_ns: int) -> None:
    record(phase, seq, t_enq_ns)


def producer() -> tuple[Callable[[int, int, int], Any], Callable[[], None]]:
    return noop.delay, lambda: None
