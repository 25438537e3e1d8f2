"""The caller's ``sqlite3.Connection`` as the connection of one write (``connection=``).

Checked before anything is written: its main database must be the queue's file (the same
device and inode as the file the queue opened, which must still be at its path), and a write
there must not commit on its own. A connection in a transaction (``BEGIN IMMEDIATE`` ...)
qualifies; one in autocommit mode outside a transaction (``isolation_level=None``, or
``autocommit=True`` on Python 3.12+) is refused (``NotInTransaction``). One in sqlite3's
implicit-transaction mode (the default ``isolation_level``; what SQLAlchemy runs) that has not
written yet gets its transaction begun here, as its own next write would begin it; its
``commit()`` (or SQLAlchemy's) ends it.

Durability is the caller's: the commit is the caller's connection's, with its
``synchronous`` setting (SQLite's default in WAL mode, FULL, survives power loss). The queue's
group commit never takes such a write.
"""

from __future__ import annotations

import os
import sqlite3
from typing import TYPE_CHECKING, Any

from ...errors import ForeignConnection, NotInTransaction, UnusableConnection
from .errors import translate_errors

if TYPE_CHECKING:
    from .dialect import SQLiteDialect


class AdoptedConnection:
    """The caller's connection, as the core uses a connection of the queue's own: rows read
    by column name (``sqlite3.Row``) on the cursors it makes, the caller's ``row_factory``
    left alone."""

    __slots__ = ("raw",)

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def cursor(self) -> sqlite3.Cursor:
        cursor = self.raw.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any) -> sqlite3.Cursor:
        return self.cursor().executemany(sql, parameters)

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def adopt(dialect: SQLiteDialect, raw: sqlite3.Connection) -> AdoptedConnection:
    """``raw`` checked (see the module docstring) and wrapped; in implicit-transaction mode
    its transaction begun."""
    adopted = AdoptedConnection(raw)
    try:
        raw.cursor().close()  # sqlite3 checks here that it is open and of this thread
        in_transaction = raw.in_transaction
    except sqlite3.ProgrammingError as exc:  # closed, or made by another thread
        raise UnusableConnection(f"connection= cannot be used: {exc}; nothing was "
                                 "written") from None
    identity = dialect._identity  # noqa: SLF001 - the file the queue opened
    if identity is None:
        raise ForeignConnection(
            "this queue is in memory: no other connection can write to it; use a file "
            "(Queue('data/app.db'), your tables beside the queue's); nothing was written")
    with translate_errors():
        row = adopted.execute(dialect.queries["external_database_file"]).fetchone()
    file = row["file"] if row is not None else ""
    dialect.verify_file()  # the queue's file is still at its path (DatabaseMissing if not)
    try:
        found = os.stat(file) if file else None
    except OSError:
        found = None
    if found is None or (found.st_dev, found.st_ino) != identity:
        raise ForeignConnection(
            f"connection= is a connection to {file or 'a database in memory'!s}, not to this "
            f"queue's file {dialect.path}: the queue's write and yours would not commit "
            "together. Open your connection on the queue's file (your tables live beside "
            "the queue's); nothing was written")
    if not in_transaction:
        if raw.isolation_level is None or getattr(raw, "autocommit", None) is True:
            raise NotInTransaction(
                "connection= is not in a transaction (autocommit mode): the queue's write "
                "would commit at once, not with yours. Begin one first "
                "(conn.execute('BEGIN IMMEDIATE')); nothing was written")
        with translate_errors():
            raw.execute(dialect.queries["external_begin"])
    return adopted
