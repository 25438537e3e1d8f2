"""Turning PostgreSQL rows into the library's values, and psycopg errors into its errors.

Rows come from psycopg's ``dict_row`` factory (named access), except the claim's, which are
plain tuples read by position as in :mod:`persistent_queue.sqlite_rows`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from .errors import DatabaseBusy, StorageError, StorageFull
from .models import DeadLetter, Job, JobState, QueueInfo
from .sqlite_rows import job_from_claim, loads

__all__ = [
    "ReadRow",
    "read_row",
    "dead_letter_from_row",
    "job_from_claim",
    "job_from_row",
    "loads",
    "queue_from_row",
    "translate_errors",
]

Row = Mapping[str, Any]

#: Waiting for a lock too long, or losing a race the server refused to serialise.
_BUSY = (
    pg_errors.LockNotAvailable,
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.QueryCanceled,
)
#: Out of disk, memory or another server resource: nothing was written.
_FULL = (pg_errors.DiskFull, pg_errors.OutOfMemory, pg_errors.InsufficientResources)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn psycopg's exceptions into the library's StorageError family."""
    try:
        yield
    except _BUSY as exc:
        raise DatabaseBusy(f"the database stayed locked too long: {_first_line(exc)}") from exc
    except _FULL as exc:
        raise StorageFull(f"the database or its disk is full: {_first_line(exc)}") from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise StorageError(f"lost the connection to PostgreSQL: {_first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise StorageError(f"database error: {_first_line(exc)}") from exc


class ReadRow(tuple[Any, ...]):
    """A result row readable by position and by column name, like ``sqlite3.Row``."""

    _names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> ReadRow:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._names[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        """The column names, in order."""
        return list(self._names)


def read_row(cursor: Any) -> Callable[[Sequence[Any]], ReadRow]:
    """psycopg row factory making :class:`ReadRow` rows (for diagnostics)."""
    names = {column.name: index for index, column in enumerate(cursor.description or ())}
    return lambda values: ReadRow(values, names)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def job_from_row(row: Row, *, lease_token: bool = False) -> Job:
    """A job from a ``jobs`` row (``effective_max_attempts`` fills a NULL max_attempts)."""
    max_attempts = row.get("effective_max_attempts")
    if max_attempts is None:
        max_attempts = row["max_attempts"]
    depends_on = row.get("depends_on")
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
        dedup_key=row.get("dedup_key"),
        depends_on=tuple(loads(depends_on) or ()) if depends_on is not None else (),
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
    )
