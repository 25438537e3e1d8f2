"""Operations: workers, throughput, ``/healthz`` and ``/metrics``."""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from ... import config
from ...errors import InvalidArgument, QueueError
from ...health import (
    WAL_WARNING_BYTES,
    DatabaseHealth,
    WriteProbe,
    database_health,
    file_error,
)
from ...queue import Queue
from ..factory import ApiState, get_queue, get_state
from ..metrics import CONTENT_TYPE
from ..schemas import ThroughputOut, WorkerOut
from ..strict_json import StrictJSONRoute

router = APIRouter(route_class=StrictJSONRoute, tags=["operations"])
QueueDep = Annotated[Queue, Depends(get_queue)]
StateDep = Annotated[ApiState, Depends(get_state)]
_integrity_lock = threading.Lock()
_probe_lock = threading.Lock()


@router.get("/workers", response_model=list[WorkerOut])
def workers(
    queue: QueueDep,
    stale_after: Annotated[float, Query(gt=0, le=config.MAX_DELAY, allow_inf_nan=False)] = (
        config.WORKER_STALE_AFTER),
) -> list[dict[str, Any]]:
    """Registered producers and consumers: running, stopped, or lost (running ones silent for
    ``stale_after`` seconds)."""
    return [worker.to_dict() for worker in queue.workers(stale_after=stale_after)]


@router.get("/throughput", response_model=list[ThroughputOut])
def throughput(
    queue: QueueDep,
    window: Annotated[float, Query(gt=0, le=config.MAX_DELAY, allow_inf_nan=False)] = 3600,
    bucket: Annotated[float, Query(gt=0, le=config.MAX_DELAY, allow_inf_nan=False)] = 60,
) -> list[dict[str, Any]]:
    """Enqueued/acked/failed/dead counts per queue per ``bucket`` seconds over ``window``."""
    if window / bucket > 10_000:
        raise InvalidArgument("window / bucket must be at most 10000 buckets")
    return [point.to_dict() for point in queue.throughput(window=window, bucket=bucket)]


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE: {}},
                             "description": "Prometheus text format"}})
def metrics(state: StateDep) -> Response:
    """Queue depth by state, this process's counters and claim latency (Prometheus)."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


def _check(checks: dict[str, dict[str, Any]], name: str, ok: bool, **detail: Any) -> None:
    checks[name] = {"ok": ok, **detail}


def _health(state: ApiState) -> tuple[DatabaseHealth, str, float]:
    """A health reading; its integrity part is the cached ``quick_check``, re-run when older
    than the interval (it reads every page)."""
    cache = state.integrity_cache
    with _integrity_lock:
        if time.monotonic() - cache.get("at", -1e18) > state.integrity_interval:
            report = database_health(state.queue, integrity="quick",
                                     min_free_bytes=state.min_free_bytes)
            cache.update(at=time.monotonic(), integrity=report.integrity, checked_at=time.time())
            return report, str(report.integrity), cache["checked_at"]
    report = database_health(state.queue, min_free_bytes=state.min_free_bytes)
    return report, str(cache["integrity"]), cache["checked_at"]


def _write_probe(state: ApiState) -> WriteProbe:
    """The app's write probe (one per app: a thread and a connection of its own)."""
    with _probe_lock:
        probe = state.integrity_cache.get("write_probe")
        if not isinstance(probe, WriteProbe):
            probe = state.integrity_cache["write_probe"] = WriteProbe(state.queue,
                                                                      key="api.healthz")
        return probe


@router.get("/healthz", responses={503: {"description": "a check failed"}})
def healthz(state: StateDep) -> JSONResponse:
    """Database reachable, writable and sound; disk space and WAL size. No token needed.

    The figures come from :func:`persistent_queue.health.database_health`, as ``pq doctor``'s
    and the admin console's do. Cheap and bounded: ``writable`` is a
    :class:`~persistent_queue.health.WriteProbe` (one durable write per couple of seconds at
    most, never waited for more than a second); ``file`` (SQLite) checks that the path still
    names the database file this process has open.
    """
    queue = state.queue
    checks: dict[str, dict[str, Any]] = {}
    missing = file_error(queue)
    if missing is not None:  # deleted or replaced under this process: no write would last
        _check(checks, "file", False, error=missing)
    try:
        _check(checks, "reachable", True, schema_version=queue.schema_version())
    except QueueError as exc:
        _check(checks, "reachable", False, error=str(exc))
    written = _write_probe(state).check()
    _check(checks, "writable", written.ok, **written.to_dict())
    try:
        report, integrity, checked_at = _health(state)
    except (QueueError, OSError) as exc:
        _check(checks, "integrity", False, error=str(exc))
    else:
        problems = [] if integrity == "ok" else integrity.splitlines()[:10]
        _check(checks, "integrity", not problems, problems=problems, checked_at=checked_at)
        if report.server:  # the disk and the WAL are the server's business
            _check(checks, "server", True, backend=report.backend,
                   version=report.server_version, connections=report.connections,
                   max_connections=report.max_connections)
            _check(checks, "database", True, bytes=report.file_bytes)
        else:
            if missing is None:
                _check(checks, "file", True, path=report.path)
            _check(checks, "journal", report.journal_mode.lower() == "wal",
                   journal_mode=report.journal_mode)
            _check(checks, "disk", report.free_disk_bytes >= state.min_free_bytes,
                   free_bytes=report.free_disk_bytes, min_free_bytes=state.min_free_bytes)
            _check(checks, "wal", True, bytes=report.wal_bytes, warning_bytes=WAL_WARNING_BYTES,
                   large=report.wal_bytes > WAL_WARNING_BYTES)
            _check(checks, "database", True, bytes=report.file_bytes,
                   free_pages=report.freelist_count)
    healthy = all(item["ok"] for item in checks.values())
    return JSONResponse({"status": "ok" if healthy else "fail", "checks": checks},
                        status_code=200 if healthy else 503)


__all__ = ["router"]
