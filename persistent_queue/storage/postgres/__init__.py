"""The PostgreSQL dialect: connections, row locks, deadlock retry, LISTEN/NOTIFY and its SQL.

Only :mod:`.url` is free of psycopg (the ``postgres`` extra): importing this package imports
nothing else until ``PostgresBackend`` or ``PostgresDialect`` is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import PostgresBackend
    from .dialect import PostgresDialect


def __getattr__(name: str) -> Any:
    if name == "PostgresBackend":
        from .backend import PostgresBackend
        return PostgresBackend
    if name == "PostgresDialect":
        from .dialect import PostgresDialect
        return PostgresDialect
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PostgresBackend", "PostgresDialect"]
