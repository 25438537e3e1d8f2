"""Queues as resources: list, create, read, update, delete, pause, resume, purge, stats; their
alerts and the jobs running now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from ... import config
from ...queue import Queue
from ..factory import get_queue
from ..schemas import (
    NAME_REGEX,
    AlertOut,
    CountOut,
    CreateQueueRequest,
    QueueOut,
    QueueStatsOut,
    RunningJobOut,
    UpdateQueueRequest,
)
from ..strict_json import StrictJSONRoute

router = APIRouter(route_class=StrictJSONRoute, tags=["queues"])
QueueDep = Annotated[Queue, Depends(get_queue)]
NamePath = Annotated[str, Path(pattern=NAME_REGEX, description="the queue's name")]


@router.get("/queues", response_model=list[QueueOut])
def list_queues(queue: QueueDep) -> list[dict[str, Any]]:
    """Every queue's settings, by name."""
    return [info.to_dict() for info in queue.list_queues()]


@router.post("/queues", status_code=201, response_model=QueueOut)
def create_queue(body: CreateQueueRequest, queue: QueueDep) -> dict[str, Any]:
    """Create a queue with its own settings (409 if it exists, unless ``exist_ok``)."""
    return queue.create_queue(
        body.name, max_attempts=body.max_attempts, visibility_timeout=body.visibility_timeout,
        max_size=body.max_size, exist_ok=body.exist_ok, timeout=body.timeout,
        concurrency=body.concurrency, rate_limit=body.rate_limit,
        group_concurrency=body.group_concurrency,
        group_rate_limit=body.group_rate_limit, alert_depth=body.alert_depth,
        alert_oldest_age=body.alert_oldest_age, alert_failure_rate=body.alert_failure_rate,
        alert_dead_letters=body.alert_dead_letters).to_dict()


@router.get("/alerts", response_model=list[AlertOut])
def alerts(
    queue: QueueDep,
    name: Annotated[str | None, Query(alias="queue", pattern=NAME_REGEX,
                                      description="only this queue")] = None,
    firing: Annotated[bool, Query(description="only the alerts firing now")] = False,
) -> list[dict[str, Any]]:
    """Every alert a queue has a threshold for, measured now (404 for an unknown queue)."""
    return [alert.to_dict() for alert in queue.alerts(name) if alert.firing or not firing]


@router.get("/busy", response_model=list[RunningJobOut])
def running_jobs(
    queue: QueueDep,
    name: Annotated[str | None, Query(alias="queue", pattern=NAME_REGEX,
                                      description="only this queue")] = None,
    limit: Annotated[int, Query(ge=1, le=config.MAX_BATCH)] = 100,
) -> list[dict[str, Any]]:
    """Jobs running now (leased, the lease live), longest running first (404 for an unknown
    queue)."""
    return [job.to_dict() for job in queue.running_jobs(name, limit=limit)]


@router.get("/stats", response_model=dict[str, QueueStatsOut])
def all_stats(queue: QueueDep) -> dict[str, dict[str, Any]]:
    """Jobs by state for every queue."""
    return {name: item.to_dict() for name, item in queue.stats().items()}


@router.get("/queues/{name}", response_model=QueueOut)
def get_queue_info(name: NamePath, queue: QueueDep) -> dict[str, Any]:
    """A queue's settings (404 if there is none)."""
    return queue.get_queue(name).to_dict()


@router.patch("/queues/{name}", response_model=QueueOut)
def update_queue(name: NamePath, body: UpdateQueueRequest, queue: QueueDep) -> dict[str, Any]:
    """Change settings; omitted fields stay as they are, ``null`` removes a bound or a
    limit (a 422 names a malformed ``rate_limit``)."""
    queue.get_queue(name)
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    for field in ("max_attempts", "visibility_timeout"):
        if field in changes and changes[field] is None:
            del changes[field]  # null means "leave as is" for settings that cannot be unset
    return queue.update_queue(name, **changes).to_dict()


@router.delete("/queues/{name}", status_code=204)
def delete_queue(
    name: NamePath, queue: QueueDep,
    force: Annotated[bool, Query(description="delete even with unfinished jobs")] = False,
) -> Response:
    """Delete a queue with its history, the schedules that target it and its subscriptions.

    409 (nothing deleted) while it holds unfinished jobs, unless ``force``.
    """
    queue.get_queue(name)
    queue.delete_queue(name, force=force)
    return Response(status_code=204)


@router.post("/queues/{name}/pause", response_model=QueueOut)
def pause(name: NamePath, queue: QueueDep) -> dict[str, Any]:
    """Stop consumers claiming from this queue; producers may still enqueue."""
    queue.get_queue(name)
    return queue.pause(name).to_dict()


@router.post("/queues/{name}/resume", response_model=QueueOut)
def resume(name: NamePath, queue: QueueDep) -> dict[str, Any]:
    """Let consumers claim again."""
    queue.get_queue(name)
    return queue.resume(name).to_dict()


@router.post("/queues/{name}/purge", response_model=CountOut)
def purge(name: NamePath, queue: QueueDep) -> CountOut:
    """Delete every unfinished job of the queue; returns how many."""
    return CountOut(count=queue.purge(name))


@router.get("/queues/{name}/stats", response_model=QueueStatsOut)
def queue_stats(name: NamePath, queue: QueueDep) -> dict[str, Any]:
    """Jobs of one queue by state."""
    return queue.stats(name).to_dict()
