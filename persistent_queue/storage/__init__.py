"""Storage: one SQL core (:mod:`.core`, :mod:`.workflows`, :mod:`.reads`) on two dialects
(:mod:`.sqlite`, :mod:`.postgres`), behind the :class:`~.base.Backend` contract.

``open_backend(target)`` opens the backend a path or URL names; ``Queue`` calls it, or takes a
backend instance as it is.
"""

from __future__ import annotations

import os

from ..config import Durability
from ..errors import InvalidArgument
from ..extras import require_extra
from .base import RESULTS, Backend, NewJob
from .core import SQLBackend
from .dialect import Dialect
from .postgres.url import is_postgres_url


def open_backend(target: str | os.PathLike[str], *, durability: Durability = "full",
                 busy_timeout: float = 60.0) -> Backend:
    """The backend of a SQLite path, ``sqlite:///path`` or ``postgresql://`` URL."""
    text = os.fspath(target)
    if is_postgres_url(text):
        require_extra("postgres", what="a postgresql:// database")
        from .postgres.backend import PostgresBackend

        return PostgresBackend(text, durability=durability, busy_timeout=busy_timeout)
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme != "sqlite":
            raise InvalidArgument(
                f"unsupported database URL scheme {scheme!r}: use a file path, sqlite:///path "
                "or postgresql://user@host:port/database"
            )
        text = rest
    from .sqlite import SQLiteBackend

    return SQLiteBackend(text, durability=durability, busy_timeout=busy_timeout)


__all__ = ["RESULTS", "Backend", "Dialect", "NewJob", "SQLBackend", "open_backend"]
