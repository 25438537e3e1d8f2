"""psycopg errors into the library's errors, and rows readable by position and by name.

Rows become the library's values in :mod:`.rows`, shared with the SQLite backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ...errors import DatabaseBusy, StorageError, StorageFull

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


def is_deadlock(exc: BaseException) -> bool:
    """Whether ``exc`` (as translated) is the server breaking a deadlock by rolling back."""
    return isinstance(exc.__cause__, pg_errors.DeadlockDetected)


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
