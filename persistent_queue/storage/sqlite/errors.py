"""Turning sqlite3 errors into the library's errors (rows become values in :mod:`.rows`)."""

from __future__ import annotations

import sqlite3
from types import TracebackType

from ...errors import DatabaseBusy, StorageError, StorageFull


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
