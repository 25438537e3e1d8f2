"""Topics (publish/subscribe) and recurring schedules.

Publishing to a topic that no queue subscribes to stores nothing and answers **404**
``no_subscribers`` (the topic, as a delivery target, does not exist), like an unknown schedule.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, Field

from ... import config
from ...queue import Queue
from .. import schemas
from ..errors import error_response
from ..factory import ApiState, get_queue, get_state
from ..schemas import NAME_REGEX, Attempts, Delay, Headers, Priority, QueueName, StrictModel
from ..strict_json import StrictJSONRoute

router = APIRouter(route_class=StrictJSONRoute, tags=["workflows"])
QueueDep = Annotated[Queue, Depends(get_queue)]
StateDep = Annotated[ApiState, Depends(get_state)]
TopicPath = Annotated[str, Path(pattern=NAME_REGEX, description="the topic's name")]
NamePath = Annotated[str, Path(pattern=NAME_REGEX, description="the schedule's name")]


class SubscribeRequest(StrictModel):
    """A queue to receive a copy of every job published to the topic."""

    queue: QueueName


class PublishRequest(StrictModel):
    """A job to copy into every subscribed queue."""

    payload: Any = Field(description="any JSON value (at most 1 MiB encoded)")
    priority: Priority = 0
    delay: Delay = 0
    headers: Headers | None = None
    max_attempts: Attempts | None = None
    dedup_key: Annotated[str | None, Field(min_length=1,
                                           max_length=config.MAX_DEDUP_KEY_CHARS)] = None


class ScheduleRequest(StrictModel):
    """A recurring job: give ``every`` (seconds) or ``cron`` (one of the two)."""

    name: QueueName
    queue: QueueName
    payload: Any = None
    every: Annotated[float | None, Field(ge=config.MIN_SCHEDULE_EVERY, le=config.MAX_DELAY,
                                         allow_inf_nan=False)] = None
    cron: Annotated[str | None, Field(min_length=1, max_length=256,
                                      examples=["*/5 * * * *"])] = None
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"
    start_at: Annotated[float | None, Field(ge=0, allow_inf_nan=False,
                                            description="epoch seconds of the first run")] = None
    headers: Headers | None = None
    priority: Priority = 0
    max_attempts: Attempts | None = None


class TopicOut(BaseModel):
    """A topic and the queues subscribed to it."""

    topic: str
    queues: list[str]


class PublishedOut(BaseModel):
    """The jobs a publish stored, one per subscribed queue."""

    topic: str
    jobs: list[dict[str, Any]] = Field(description="{id, queue, deduplicated} per copy")
    ids: list[int]


@router.get("/topics", response_model=list[TopicOut])
def topics(queue: QueueDep) -> list[dict[str, Any]]:
    """Every topic that has subscribers, with its queues."""
    grouped: dict[str, list[str]] = {}
    for sub in queue.subscriptions():
        grouped.setdefault(sub.topic, []).append(sub.queue)
    return [{"topic": topic, "queues": queues} for topic, queues in grouped.items()]


@router.get("/topics/{topic}/subscriptions", response_model=list[schemas.SubscriptionOut])
def subscriptions(topic: TopicPath, queue: QueueDep) -> list[dict[str, Any]]:
    """The queues subscribed to ``topic`` (empty if none)."""
    return [sub.to_dict() for sub in queue.subscriptions(topic)]


@router.post("/topics/{topic}/subscriptions", status_code=201,
             response_model=schemas.SubscriptionOut,
             responses={200: {"model": schemas.SubscriptionOut,
                              "description": "Already subscribed."}})
def subscribe(topic: TopicPath, body: SubscribeRequest, queue: QueueDep,
              response: Response) -> dict[str, Any]:
    """Subscribe a queue to ``topic`` (201; 200 if it already was)."""
    if not queue.subscribe(topic, queue=body.queue):
        response.status_code = 200
    return next(s.to_dict() for s in queue.subscriptions(topic) if s.queue == body.queue)


@router.delete("/topics/{topic}/subscriptions/{queue_name}", status_code=204,
               responses={404: {"description": "The queue is not subscribed."}})
def unsubscribe(topic: TopicPath, queue_name: Annotated[str, Path(pattern=NAME_REGEX)],
                queue: QueueDep) -> Response:
    """Stop delivering ``topic`` into the queue (404 ``not_subscribed`` if it was not)."""
    if not queue.unsubscribe(topic, queue=queue_name):
        return error_response(404, "not_subscribed",
                              f"queue {queue_name!r} is not subscribed to {topic!r}")
    return Response(status_code=204)


@router.post("/topics/{topic}/publish", status_code=201, response_model=PublishedOut,
             responses={404: {"description": "No queue subscribes to the topic "
                                             "(no_subscribers); nothing was stored."},
                        429: {"description": "A subscribed queue is full; nothing was stored."}})
def publish(topic: TopicPath, body: PublishRequest, state: StateDep) -> dict[str, Any]:
    """Store one copy of the job in every subscribed queue, in one transaction (201)."""
    jobs = state.queue.publish(topic, body.payload, headers=body.headers,
                               priority=body.priority, delay=body.delay,
                               max_attempts=body.max_attempts, dedup_key=body.dedup_key)
    for job in jobs:
        if not job.deduplicated:
            state.metrics.enqueued.labels(job.queue).inc()
    return {"topic": topic, "ids": [job.id for job in jobs],
            "jobs": [{"id": j.id, "queue": j.queue, "deduplicated": j.deduplicated}
                     for j in jobs]}


@router.get("/schedules", response_model=list[schemas.ScheduleOut])
def list_schedules(queue: QueueDep) -> list[dict[str, Any]]:
    """Every schedule, by name."""
    return [info.to_dict() for info in queue.list_schedules()]


@router.post("/schedules", status_code=201, response_model=schemas.ScheduleOut,
             responses={422: {"description": "Invalid: e.g. an unknown time zone, or a cron "
                                             "expression with no tick to come."}})
def add_schedule(body: ScheduleRequest, queue: QueueDep) -> dict[str, Any]:
    """Create or replace the schedule ``name`` (201); the scheduler process fires it.

    A cron expression that has no tick from now on (``0 0 30 2 *``, a year range in the past)
    or a ``timezone`` that names no zone is refused (422 ``invalid_input``).
    """
    info = queue.schedule(body.queue, body.payload, every=body.every, cron=body.cron,
                          name=body.name, headers=body.headers, priority=body.priority,
                          max_attempts=body.max_attempts, start_at=body.start_at,
                          timezone=body.timezone)
    return info.to_dict()


@router.get("/schedules/{name}", response_model=schemas.ScheduleOut)
def get_schedule(name: NamePath, queue: QueueDep) -> dict[str, Any]:
    """One schedule (404 ``schedule_not_found`` if none)."""
    return queue.get_schedule(name).to_dict()


@router.delete("/schedules/{name}", status_code=204,
               responses={404: {"description": "No such schedule."}})
def delete_schedule(name: NamePath, queue: QueueDep) -> Response:
    """Delete a schedule; jobs it already enqueued stay (404 if none)."""
    queue.unschedule(name)
    return Response(status_code=204)
