"""huey with SqliteHuey: ``huey_consumer bench.endtoend_peers.huey_app.huey -k thread|process``
and calling the task (``BENCH_E2E_DB``: the SQLite file)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from huey import SqliteHuey

from bench.endtoend_peers.common import record

huey = SqliteHuey("e2e", filename=os.environ.get("BENCH_E2E_DB", "huey.db"))


@huey.task()
def noop(phase: int, seq: int, t_enq_ns: int) -> None:
    record(phase, seq, t_enq_ns)


def producer() -> tuple[Callable[[int, int, int], Any], Callable[[], None]]:
    return noop, lambda: None
