"""Run the queue's write on the caller's own connection, inside the caller's transaction.

``Queue.enqueue(..., connection=conn)``, ``enqueue_many``, ``ack`` and ``nack`` (and tasks'
``options(connection=conn)``) wrap their backend call in :func:`joined`. For the duration of
that call, on this thread only, the dialect's connection *is* the caller's (wrapped by
:meth:`~.dialect.Dialect.adopt_connection` so rows read by column name) and the thread is
marked as inside a transaction, exactly as inside ``Queue.atomic()``: the core's
``transaction()`` joins it instead of beginning its own, no group commit takes the write (the
caller's transaction is the caller's, and its commit the caller's), a PostgreSQL deadlock is
raised rather than run again, and a NOTIFY is sent on the caller's connection, delivered when
the caller commits. The statements, the validation and the fencing (lease token, state and
expiry in the ``WHERE``) are the core's, unchanged.

The write runs in a savepoint of the caller's transaction: if it raises (``LeaseLost``,
``QueueFull``, a database error) it is rolled back to where it began, so nothing is half
written and the caller's transaction is as it was (on PostgreSQL, still usable): the caller
decides whether to roll back. Before anything is written, the connection is checked: its kind
(``WrongConnectionKind``), its database (``ForeignConnection``) and its transaction
(``NotInTransaction``).

Concurrency: only the calling thread's state changes, and only during the call; the caller
must not use the connection from another thread meanwhile (no driver allows that anyway).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import UnusableConnection, WrongConnectionKind
from ..transactions import driver_connection
from .base import Backend
from .dialect import Dialect

logger = logging.getLogger(__name__)


@contextmanager
def joined(backend: Backend, connection: Any) -> Iterator[None]:
    """Run this thread's writes inside the block on ``connection`` (the caller's, of the
    queue's database), in the caller's transaction, each error leaving nothing written."""
    dialect = getattr(backend, "dialect", None)
    if not isinstance(dialect, Dialect):
        raise WrongConnectionKind(f"{type(backend).__name__} cannot write on a caller's "
                                  "connection; nothing was written")
    found = driver_connection(connection)
    if found.kind != dialect.name:
        raise WrongConnectionKind(
            f"connection= is {found.given} (a {_ENGINES[found.kind]} connection), but this "
            f"queue's database is {_ENGINES[dialect.name]} ({dialect.describe()}); nothing "
            "was written")
    if dialect.in_atomic():
        raise UnusableConnection(
            "connection= cannot be used inside q.atomic(): the block is a transaction of the "
            "queue's own connection; nothing was written")
    adopted = dialect.adopt_connection(found.raw)
    local = dialect._local
    saved = getattr(local, "conn", None), getattr(local, "pid", None)
    local.conn, local.pid, local.atomic = adopted, os.getpid(), True
    try:
        with dialect.translate_errors():
            adopted.execute(dialect.queries["external_savepoint"])
        try:
            yield
        except BaseException:
            _roll_back(dialect, adopted)
            raise
        with dialect.translate_errors():
            adopted.execute(dialect.queries["external_release"])
    finally:
        local.conn, local.pid = saved
        local.atomic = False


def _roll_back(dialect: Dialect, adopted: Any) -> None:
    """Undo the write's statements, keeping the caller's transaction (when the database has
    not already rolled all of it back: then there is nothing left to undo)."""
    if not adopted.in_transaction:
        return
    try:
        adopted.execute(dialect.queries["external_rollback"])
        adopted.execute(dialect.queries["external_release"])
    except Exception:  # the connection broke: the caller's commit or rollback will say so
        logger.warning("could not roll back the queue's write on the caller's connection",
                       exc_info=True)


_ENGINES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
