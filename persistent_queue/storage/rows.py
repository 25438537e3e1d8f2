"""Turning stored rows into the library's values, for every backend.

A row is anything indexable by column name with ``keys()`` (``sqlite3.Row``, psycopg's
``dict_row``); a claimed row is a plain tuple in the ``claim`` statement's column order.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, Protocol

from ..flow import Rate
from ..models import DeadLetter, Job, JobEvent, JobState, Progress, QueueInfo, ScheduleInfo


class Row(Protocol):
    """A result row read by column name."""

    def __getitem__(self, key: str) -> Any: ...
    def keys(self) -> Any: ...


def loads(text: str | None) -> Any:
    """Decode a nullable JSON column."""
    return None if text is None else json.loads(text)


def job_from_row(row: Row, *, lease_token: bool = False) -> Job:
    """A job from a ``jobs`` row (``effective_max_attempts`` fills a NULL max_attempts and
    ``effective_timeout`` a NULL timeout with the queue's)."""
    keys = row.keys()
    max_attempts = row["effective_max_attempts"] if "effective_max_attempts" in keys else None
    if max_attempts is None:
        max_attempts = row["max_attempts"]
    timeout = row["effective_timeout"] if "effective_timeout" in keys else row["timeout"]
    progress = row["progress"]
    return Job(
        id=row["id"],
        queue=row["queue"],
        payload=json.loads(row["payload"]),
        headers=loads(row["headers"]) or {},
        priority=row["priority"],
        state=JobState(row["state"]),
        attempts=row["attempts"],
        max_attempts=max_attempts,
        lease_token=row["lease_token"] if lease_token else None,
        lease_expires_at=row["lease_expires_at"],
        created_at=row["created_at"],
        available_at=row["available_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
        last_error=row["last_error"],
        dedup_key=row["dedup_key"] if "dedup_key" in keys else None,
        depends_on=tuple(loads(row["depends_on"]) or ()) if "depends_on" in keys else (),
        result=loads(row["result"]) if "result" in keys else None,
        timeout=timeout,
        started_at=row["started_at"],
        claimed_by=row["claimed_by"],
        progress=None if progress is None else Progress(progress, row["progress_message"]),
        cancel_requested=row["cancel_requested_at"] is not None,
        cancel_reason=row["cancel_reason"],
        group_key=group_key(row["group_key"]) if "group_key" in keys else None,
    )


def group_key(stored: str | None) -> str | None:
    """A stored group key as shown: the group '' (jobs enqueued without a key on a queue with
    group limits) is no key."""
    return stored or None


def _fast_constructor(cls: type[Any]) -> Callable[..., Any]:
    """A positional constructor for a frozen, slotted dataclass that skips ``__init__``.

    A frozen dataclass sets each field through ``object.__setattr__``; calling the slot
    descriptors directly builds the same object in about half the time, which matters when
    a batch builds a thousand of them. Every field must be given, in declaration order.
    """
    names = [f.name for f in dataclasses.fields(cls)]
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls}
    lines = [f"def make({', '.join(names)}):", "    obj = new(cls)"]
    for index, name in enumerate(names):
        scope[f"set{index}"] = getattr(cls, name).__set__
        lines.append(f"    set{index}(obj, {name})")
    lines.append("    return obj")
    exec("\n".join(lines), scope)  # noqa: S102 - source built from the dataclass's own fields
    make: Callable[..., Any] = scope["make"]
    return make


#: ``Job(...)`` with all 26 fields, positional, at half the cost (hot paths only).
make_job: Callable[..., Job] = _fast_constructor(Job)

_LEASED = JobState.LEASED
_raw_decode = json.JSONDecoder().raw_decode


def _loads_json(text: str) -> Any:
    """``json.loads`` for the texts this library stored, at under half its cost.

    ``raw_decode`` skips ``loads``'s type checks and its two whitespace scans; anything it
    does not consume whole (surrounding whitespace, a second value) goes through ``loads``,
    so the result and the errors are ``loads``'s own.
    """
    try:
        value, end = _raw_decode(text)
    except (ValueError, TypeError):  # not JSON, or not a str (bytes): loads decides
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def job_from_claim(row: tuple[Any, ...]) -> Job:
    """A claimed job from a plain tuple in the column order of the ``claim`` statement."""
    (job_id, queue, payload, headers, priority, attempts, max_attempts, lease_token,
     lease_expires_at, created_at, available_at, updated_at, last_error, dedup_key,
     depends_on, timeout, started_at, claimed_by, group) = row
    return make_job(
        job_id, queue, _loads_json(payload),
        _loads_json(headers) or {} if headers is not None else {},
        priority, _LEASED, attempts, max_attempts, lease_token, lease_expires_at,
        created_at, available_at, updated_at, None, last_error, dedup_key, False,
        tuple(_loads_json(depends_on) or ()) if depends_on is not None else (), None,
        timeout, started_at, claimed_by, None, False, None,
        group or None,
    )


def dead_letter_from_row(row: Row) -> DeadLetter:
    """A dead letter from a ``dead_letters`` row."""
    return DeadLetter(
        id=row["id"],
        queue=row["queue"],
        payload=json.loads(row["payload"]),
        headers=loads(row["headers"]) or {},
        priority=row["priority"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        reason=row["reason"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        dead_at=row["dead_at"],
        timeout=row["timeout"],
        group_key=group_key(row["group_key"]) if "group_key" in row.keys() else None,
    )


def queue_from_row(row: Row) -> QueueInfo:
    """A queue's settings from a ``queues`` row."""
    return QueueInfo(
        name=row["name"],
        max_attempts=row["max_attempts"],
        visibility_timeout=row["visibility_timeout"],
        max_size=row["max_size"],
        paused=bool(row["paused"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        timeout=row["timeout"],
        concurrency=row["concurrency"],
        rate_limit=_rate_text(row["rate_count"], row["rate_period"]),
        group_concurrency=row["group_concurrency"],
        group_rate_limit=_rate_text(row["group_rate_count"], row["group_rate_period"]),
        alert_depth=row["alert_depth"],
        alert_oldest_age=row["alert_oldest_age"],
        alert_failure_rate=row["alert_failure_rate"],
        alert_dead_letters=row["alert_dead_letters"],
    )


def _rate_text(count: int | None, period: float | None) -> str | None:
    return None if count is None or period is None else str(Rate(int(count), float(period)))


def event_from_row(row: Row) -> JobEvent:
    """A stored event from a ``job_events`` row."""
    return JobEvent(job_id=row["job_id"], queue=row["queue"], at=row["at"],
                    event=row["event"], attempt=row["attempt"], detail=row["detail"],
                    worker=row["worker"], run_time=row["run_time"])


def schedule_from_row(row: Row) -> ScheduleInfo:
    """A schedule from a ``schedules`` row."""
    return ScheduleInfo(
        name=row["name"], queue=row["queue"], payload=json.loads(row["payload"]),
        headers=loads(row["headers"]) or {}, priority=row["priority"],
        max_attempts=row["max_attempts"], every=row["every"], cron=row["cron"],
        timezone=row["timezone"], next_run_at=row["next_run_at"],
        last_run_at=row["last_run_at"], last_job_id=row["last_job_id"], runs=row["runs"],
        missed=row["missed"], created_at=row["created_at"], updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )
