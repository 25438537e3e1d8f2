"""Operations: workers, throughput, ``/healthz`` and ``/metrics``."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from ... import config
from ...errors import InvalidArgument, QueueError
from ...queue import Queue
from ..app import ApiState, get_queue, get_state
from ..metrics import CONTENT_TYPE
from ..schemas import ThroughputOut, WorkerOut
from ..strict_json import StrictJSONRoute

router = APIRouter(route_class=StrictJSONRoute, tags=["operations"])
QueueDep = Annotated[Queue, Depends(get_queue)]
StateDep = Annotated[ApiState, Depends(get_state)]
_integrity_lock = threading.Lock()


@router.get("/workers", response_model=list[WorkerOut])
def workers(
    queue: QueueDep,
    stale_after: Annotated[float, Query(gt=0, le=config.MAX_DELAY, allow_inf_nan=False)] = (
        config.WORKER_STALE_AFTER),
) -> list[dict[str, Any]]:
    """Registered producers and consumers; running ones silent for ``stale_after`` s are dead."""
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


def _integrity(state: ApiState) -> tuple[bool, list[str], float]:
    """The cached result of the last integrity check, re-run when older than the interval."""
    cache = state.integrity_cache
    with _integrity_lock:
        if time.monotonic() - cache.get("at", -1e18) > state.integrity_interval:
            problems = state.queue.check_integrity()
            cache.update(at=time.monotonic(), problems=problems, checked_at=time.time())
    return not cache["problems"], list(cache["problems"])[:10], cache["checked_at"]


@router.get("/healthz", responses={503: {"description": "a check failed"}})
def healthz(state: StateDep) -> JSONResponse:
    """Database reachable, writable and sound; disk space and WAL size. No token needed."""
    queue = state.queue
    checks: dict[str, dict[str, Any]] = {}
    try:
        _check(checks, "reachable", True, schema_version=queue.schema_version())
    except QueueError as exc:
        _check(checks, "reachable", False, error=str(exc))
    try:
        started = time.monotonic()
        queue.set_value("api.healthz", f"{queue.now():.3f}")
        _check(checks, "writable", True, write_ms=round((time.monotonic() - started) * 1000, 2))
    except QueueError as exc:
        _check(checks, "writable", False, error=str(exc))
    try:
        ok, problems, checked_at = _integrity(state)
        _check(checks, "integrity", ok, problems=problems, checked_at=checked_at)
    except QueueError as exc:
        _check(checks, "integrity", False, error=str(exc))
    path = getattr(queue.backend, "path", None)
    if isinstance(path, Path):
        try:
            free = shutil.disk_usage(path.parent).free
            _check(checks, "disk", free >= state.min_free_bytes, free_bytes=free,
                   min_free_bytes=state.min_free_bytes)
        except OSError as exc:
            _check(checks, "disk", False, error=str(exc))
        wal = Path(f"{path}-wal")
        size = wal.stat().st_size if wal.exists() else 0
        _check(checks, "wal", True, bytes=size)
        _check(checks, "database", True, bytes=path.stat().st_size if path.exists() else 0)
    healthy = all(item["ok"] for item in checks.values())
    return JSONResponse({"status": "ok" if healthy else "fail", "checks": checks},
                        status_code=200 if healthy else 503)


__all__ = ["router"]
