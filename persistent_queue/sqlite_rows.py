"""Turning SQLite rows into the library's values, and sqlite3 errors into its errors."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .errors import DatabaseBusy, StorageError, StorageFull
from .models import DeadLetter, Job, JobState, QueueInfo


class _TranslateErrors:
    """The context manager behind :func:`translate_errors` (a class: it runs per statement,
    and a generator-based one costs several times as much to enter and leave)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        # Returns None (never suppresses): the exception, translated or not, propagates.
        if exc is None:
            return
        if isinstance(exc, sqlite3.OperationalError):
            message = str(exc)
            if "locked" in message or "busy" in message:
                raise DatabaseBusy(f"the database stayed locked too long: {message}") from exc
            if "full" in message:
                raise StorageFull(f"the database or its disk is full: {message}") from exc
            raise StorageError(f"database error: {message}") from exc
        if isinstance(exc, sqlite3.DatabaseError):
            raise StorageError(f"database error: {exc}") from exc


_TRANSLATE_ERRORS = _TranslateErrors()


def translate_errors() -> _TranslateErrors:
    """Turn sqlite3's exceptions into the library's StorageError family."""
    return _TRANSLATE_ERRORS


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def job_from_row(row: sqlite3.Row, *, lease_token: bool = False) -> Job:
    keys = row.keys()
    max_attempts = row["effective_max_attempts"] if "effective_max_attempts" in keys else None
    if max_attempts is None:
        max_attempts = row["max_attempts"]
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
    )


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


#: ``Job(...)`` with all 18 fields, positional, at half the cost (hot paths only).
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
     depends_on) = row
    return make_job(
        job_id, queue, _loads_json(payload),
        _loads_json(headers) or {} if headers is not None else {},
        priority, _LEASED, attempts, max_attempts, lease_token, lease_expires_at,
        created_at, available_at, updated_at, None, last_error, dedup_key, False,
        tuple(_loads_json(depends_on) or ()) if depends_on is not None else (),
    )


def dead_letter_from_row(row: sqlite3.Row) -> DeadLetter:
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
    )


def queue_from_row(row: sqlite3.Row) -> QueueInfo:
    return QueueInfo(
        name=row["name"],
        max_attempts=row["max_attempts"],
        visibility_timeout=row["visibility_timeout"],
        max_size=row["max_size"],
        paused=bool(row["paused"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
