"""procrastinate on PostgreSQL: ``procrastinate --app bench.endtoend_peers.procrastinate_app.app
worker`` and ``task.defer`` (``BENCH_E2E_DB``: the PostgreSQL URL)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import procrastinate

from bench.endtoend_peers.common import record

app = procrastinate.App(connector=procrastinate.PsycopgConnector(
    conninfo=os.environ.get("BENCH_E2E_DB", "")))


@app.task(queue="e2e", name="e2e.noop")
def noop(phase: int, seq: int, t_enq_ns: int) -> None:
    record(phase, seq, t_enq_ns)


def producer() -> tuple[Callable[[int, int, int], Any], Callable[[], None]]:
    app.open()

    def send(phase: int, seq: int, t_enq_ns: int) -> None:
        noop.defer(phase=phase, seq=seq, t_enq_ns=t_enq_ns)

    return send, app.close
