"""What a caller may pass as ``connection=``: its driver connection, found and named.

``Queue.enqueue(..., connection=conn)``, ``enqueue_many``, ``ack``, ``nack`` and
``task.options(connection=conn)`` write on the caller's own connection, in its transaction
(see docs/transactions.md). This module only recognises what was passed and digs out the
driver's connection underneath; the storage (:mod:`.storage.external`) checks it against the
queue's database and runs the write on it.

Recognised: a ``sqlite3.Connection``; a psycopg 3 ``Connection``; a SQLAlchemy ``Connection``
(which must be in a transaction: ``with engine.begin() as conn``), ``Session`` or
``scoped_session`` (a session is always transactional: its ``connection()`` begins one that
its ``commit()`` ends). Nothing is imported for it: an object of a driver that was never
imported cannot be that driver's connection.
"""

from __future__ import annotations

import sqlite3
import sys
from typing import Any, NamedTuple

from .errors import NotInTransaction, UnusableConnection, WrongConnectionKind


class DriverConnection(NamedTuple):
    """The driver's connection under what the caller passed, and its kind."""

    #: ``"sqlite"`` or ``"postgres"``: the name of the dialect that can use it.
    kind: str
    #: The ``sqlite3.Connection`` or ``psycopg.Connection``.
    raw: Any
    #: What the caller passed, for messages (``"SQLAlchemy Session"``).
    given: str


def driver_connection(connection: Any) -> DriverConnection:
    """The driver connection of ``connection``; ``WrongConnectionKind`` if it is none we know,
    ``NotInTransaction`` for a SQLAlchemy ``Connection`` outside a transaction."""
    given = _describe(connection)
    raw = _sqlalchemy_driver_connection(connection, given)
    if raw is None:
        raw = connection
    if isinstance(raw, sqlite3.Connection):
        return DriverConnection("sqlite", raw, given)
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(raw, psycopg.Connection):
        return DriverConnection("postgres", raw, given)
    hint = ""
    if type(raw).__module__.startswith("sqlalchemy"):
        hint = (" (of SQLAlchemy: pass a Connection in a transaction, `with engine.begin() as "
                "conn`, or a Session)")
    elif type(raw).__module__.startswith("psycopg2"):
        hint = " (psycopg 2: use psycopg 3, `pip install 'persistent-queue[postgres]'`)"
    raise WrongConnectionKind(
        f"connection= takes a sqlite3 or psycopg 3 connection, or a SQLAlchemy Connection or "
        f"Session, not {given}{hint}; nothing was written")


def _sqlalchemy_driver_connection(connection: Any, given: str) -> Any:
    """The DBAPI connection of a SQLAlchemy ``Connection``/``Session``, or None for anything
    else."""
    engine = sys.modules.get("sqlalchemy.engine")
    orm = sys.modules.get("sqlalchemy.orm")
    if orm is not None:
        if isinstance(connection, orm.scoped_session):
            connection = connection()  # the registry's Session of this thread
        if isinstance(connection, orm.Session):
            connection = connection.connection()  # begins the session's transaction if none
    if engine is None or not isinstance(connection, engine.Connection):
        return None
    if connection.closed or connection.invalidated:
        raise UnusableConnection(f"{given} is closed; nothing was written")
    if not connection.in_transaction():
        raise NotInTransaction(
            f"{given} is not in a transaction: a write there would commit on its own, not with "
            "yours. Begin one (`with engine.begin() as conn`, `conn.begin()`) or pass a "
            "Session; nothing was written")
    return connection.connection.dbapi_connection


def _describe(connection: Any) -> str:
    kind = type(connection)
    module = kind.__module__.split(".")[0]
    name = {"sqlalchemy": "SQLAlchemy", "sqlite3": "sqlite3"}.get(module, module)
    return f"a {name} {kind.__name__}" if module != "builtins" else f"a {kind.__name__}"
