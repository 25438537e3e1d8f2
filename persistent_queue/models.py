"""The values the library hands out: jobs, dead letters, queues and their statistics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JSON = Any
"""A decoded JSON value (dict, list, str, int, float, bool or None)."""


class JobState(StrEnum):
    """Where a job is in its life.

    ``waiting`` -> ``ready`` (its dependencies are done) -> ``leased`` (a consumer holds it)
    -> ``done`` (acked). A nack or an expired lease returns it to ``ready`` until its attempts
    are used up; then it is ``dead`` (in the dead-letter table).
    """

    WAITING = "waiting"
    READY = "ready"
    LEASED = "leased"
    DONE = "done"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored. Frozen: every operation returns a new ``Job``.

    ``lease_token`` is set only on the copy returned by a claim (``dequeue``); it is what
    proves to ``ack``/``nack``/``extend``/``requeue`` that the caller holds the lease.
    """

    id: int
    queue: str
    payload: JSON
    headers: dict[str, JSON]
    priority: int
    state: JobState
    attempts: int
    max_attempts: int
    lease_token: str | None
    lease_expires_at: float | None
    created_at: float
    available_at: float
    updated_at: float
    finished_at: float | None = None
    last_error: str | None = None
    dedup_key: str | None = None
    deduplicated: bool = False
    depends_on: tuple[int, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (state as its string value)."""
        data = dataclasses.asdict(self)
        data["state"] = self.state.value
        data["depends_on"] = list(self.depends_on)
        return data


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A job in the dead-letter table, with why and when it got there."""

    id: int
    queue: str
    payload: JSON
    headers: dict[str, JSON]
    priority: int
    attempts: int
    max_attempts: int | None
    reason: str
    last_error: str | None
    created_at: float
    dead_at: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One line of a job's history: a failure, an expired lease, a dead-lettering, a redrive."""

    job_id: int
    queue: str
    at: float
    event: str
    attempt: int | None
    detail: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue's settings."""

    name: str
    max_attempts: int
    visibility_timeout: float
    max_size: int | None
    paused: bool
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """How many jobs a queue holds in each state, at one moment.

    ``ready`` counts jobs claimable now; ``scheduled`` ready jobs whose time has not come
    (delayed or backing off); ``expired`` leased jobs whose lease ran out (claimable again).
    ``waiting`` jobs wait for their dependencies; ``dedup_hits`` counts enqueues answered with
    an existing job (same dedup key); ``rejected_full`` enqueues refused by ``max_size``.
    """

    queue: str
    waiting: int = 0
    ready: int = 0
    scheduled: int = 0
    leased: int = 0
    expired: int = 0
    done: int = 0
    dead: int = 0
    paused: bool = False
    oldest_ready_age: float | None = None
    retries: int = 0
    dedup_hits: int = 0
    rejected_full: int = 0

    @property
    def pending(self) -> int:
        """Jobs not yet finished: waiting, ready, scheduled and leased."""
        return self.waiting + self.ready + self.scheduled + self.leased

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with ``pending`` included."""
        data = dataclasses.asdict(self)
        data["pending"] = self.pending
        return data


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A registered producer or consumer process and its last heartbeat.

    ``state`` is ``running``, ``stopped`` (it said goodbye) or ``dead`` (its heartbeat stopped).
    """

    id: str
    kind: str
    host: str
    pid: int
    queues: list[str]
    state: str
    started_at: float
    heartbeat_at: float
    stopped_at: float | None
    processed: int
    failed: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class ThroughputPoint:
    """Jobs enqueued, acked, failed and dead-lettered in one queue during one time bucket."""

    queue: str
    bucket: float
    enqueued: int = 0
    acked: int = 0
    failed: int = 0
    dead: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A queue that receives a copy of every job published to a topic."""

    topic: str
    queue: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A recurring job: ``every`` seconds or on a ``cron`` expression (one of the two).

    ``next_run_at`` is the next tick; ``runs`` counts fired ticks and ``missed`` ticks that
    were folded into a later one because no scheduler ran at the time. ``finished_at`` is set
    when a cron expression has run out of ticks (``next_run_at`` is then its last tick, fired).
    """

    name: str
    queue: str
    payload: JSON
    headers: dict[str, JSON]
    priority: int
    max_attempts: int | None
    every: float | None
    cron: str | None
    timezone: str
    next_run_at: float
    last_run_at: float | None
    last_job_id: int | None
    runs: int
    missed: int
    created_at: float
    updated_at: float
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        """True once the schedule has no tick left (it never fires again)."""
        return self.finished_at is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class DeletedQueue:
    """A deleted queue, with the schedules and subscriptions that went with it.

    ``schedules`` names the schedules that targeted the queue and ``topics`` the topics it was
    subscribed to (both sorted): left behind, either would have recreated the queue.
    """

    name: str
    schedules: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()

    def summary(self) -> str:
        """``"with its schedule 'nightly' and its subscription to topic 'orders'"``, or ``""``."""
        parts = []
        if self.schedules:
            noun = "schedule" if len(self.schedules) == 1 else "schedules"
            parts.append(f"its {noun} {_quoted(self.schedules)}")
        if self.topics:
            noun = "subscription to topic" if len(self.topics) == 1 else "subscriptions to topics"
            parts.append(f"its {noun} {_quoted(self.topics)}")
        return "with " + " and ".join(parts) if parts else ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"name": self.name, "schedules": list(self.schedules), "topics": list(self.topics)}


def _quoted(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{name}'" for name in names)
