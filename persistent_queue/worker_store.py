"""The worker registry, stored values and throughput: the same on every backend.

:class:`WorkerStore` is a mixin of both backends. Their statements of these names
(``workers.sql``, ``queries.sql``) differ in dialect only, so the Python around them is shared:
each backend names its queries in ``_queries`` and its error translation in
``_translate_errors``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from .models import ThroughputPoint, WorkerInfo


class WorkerStore:
    """Workers, key/value settings and throughput buckets (a mixin: see the module docstring)."""

    _queries: ClassVar[Mapping[str, str]]

    if TYPE_CHECKING:  # provided by the backend
        @staticmethod
        def _translate_errors() -> AbstractContextManager[None]: ...
        def _transaction(self) -> AbstractContextManager[Any]: ...
        def _conn(self) -> Any: ...

    def register_worker(self, worker_id: str, *, kind: str, host: str, pid: int,
                        queues: list[str], now: float) -> None:
        with self._transaction() as conn:
            conn.execute(self._queries["register_worker"],
                         {"id": worker_id, "kind": kind, "host": host, "pid": pid,
                          "queues": json.dumps(queues), "now": now})

    def heartbeat_worker(self, worker_id: str, *, processed: int, failed: int,
                         now: float) -> None:
        with self._transaction() as conn:
            conn.execute(self._queries["heartbeat_worker"],
                         {"id": worker_id, "processed": processed, "failed": failed,
                          "now": now})

    def stop_worker(self, worker_id: str, now: float) -> None:
        with self._transaction() as conn:
            conn.execute(self._queries["stop_worker"], {"id": worker_id, "now": now})

    def workers(self, *, stale_before: float) -> list[WorkerInfo]:
        with self._transaction() as conn:
            conn.execute(self._queries["mark_stale_workers"], {"before": stale_before})
            rows = conn.execute(self._queries["list_workers"]).fetchall()
        return [
            WorkerInfo(id=r["id"], kind=r["kind"], host=r["host"], pid=r["pid"],
                       queues=json.loads(r["queues"]), state=r["state"],
                       started_at=r["started_at"], heartbeat_at=r["heartbeat_at"],
                       stopped_at=r["stopped_at"], processed=r["processed"], failed=r["failed"])
            for r in rows
        ]

    def kv_get(self, key: str) -> str | None:
        with self._translate_errors():
            row = self._conn().execute(self._queries["kv_get"], {"key": key}).fetchone()
        return None if row is None else str(row["value"])

    def kv_set(self, key: str, value: str, now: float) -> None:
        with self._transaction() as conn:
            conn.execute(self._queries["kv_set"], {"key": key, "value": value, "now": now})

    def throughput(self, *, since: float, bucket: float) -> list[ThroughputPoint]:
        points: dict[tuple[str, float], dict[str, int]] = {}
        params = {"since": float(since), "bucket": float(bucket)}
        with self._translate_errors():
            conn = self._conn()
            for field_name in ("enqueued", "acked", "failed", "dead"):
                for row in conn.execute(self._queries[f"throughput_{field_name}"], params):
                    key = (row["queue"], float(row["bucket"]))
                    points.setdefault(key, {})[field_name] = row["n"]
        return [ThroughputPoint(queue=queue, bucket=start, **counts)
                for (queue, start), counts in sorted(points.items(), key=lambda i: i[0][::-1])]
