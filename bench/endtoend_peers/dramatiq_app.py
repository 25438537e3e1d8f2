"""dramatiq on Redis: ``dramatiq bench.endtoend_peers.dramatiq_app --processes 2`` and
``actor.send`` (``BENCH_E2E_REDIS``: the Redis URL)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.endtoend_peers.common import record

dramatiq.set_broker(RedisBroker(url=os.environ.get("BENCH_E2E_REDIS", "redis://127.0.0.1")))


@dramatiq.actor(queue_name="e2e")
def noop(phase: int, seq: int, t_enq_ns: int) -> None:
    record(phase, seq, t_enq_ns)


def producer() -> tuple[Callable[[int, int, int], Any], Callable[[], None]]:
    return noop.send, lambda: None
