"""The caller's psycopg 3 ``Connection`` as the connection of one write (``connection=``).

Checked before anything is written: it must be open and idle (no statement running), its
transaction not failed, and a write there must not commit on its own: in a transaction
(``with conn.transaction()``, ``BEGIN``), or in psycopg's default non-autocommit mode, where
the write's first statement begins the transaction that the caller's ``commit()`` ends (as
its own first statement would); in autocommit mode outside a transaction it is refused
(``NotInTransaction``). It must reach the queue's database: the same database on the same
server (the instant the server started), with the queue's ``jobs`` table on its
``search_path`` (``ForeignConnection``); checked once per connection.

The NOTIFY that wakes waiting consumers is sent on the caller's connection, inside its
transaction: PostgreSQL delivers it at the commit, and drops it on a rollback. Durability is
the caller's session's ``synchronous_commit``; its ``lock_timeout`` applies to the row locks
the write takes.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from ...errors import ForeignConnection, NotInTransaction, UnusableConnection
from .errors import translate_errors

if TYPE_CHECKING:
    from .dialect import PostgresDialect

#: Each queue's own identity (``external_identity`` on its connection), read once.
_IDENTITIES: weakref.WeakKeyDictionary[PostgresDialect, dict[str, Any]] = (
    weakref.WeakKeyDictionary())
#: The identity each caller's connection was found to have: checked once per connection (a
#: connection never changes database; a ``search_path`` set later is the caller's to keep).
_CHECKED: weakref.WeakKeyDictionary[psycopg.Connection[Any], dict[str, Any]] = (
    weakref.WeakKeyDictionary())


class AdoptedConnection:
    """The caller's connection, as the core uses a connection of the queue's own: rows read
    by column name (``dict_row``) on the cursors it makes, the caller's row factory left
    alone."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, query: Any, params: Any = None, *,
                prepare: bool | None = None) -> psycopg.Cursor[Any]:
        return self.raw.cursor(row_factory=dict_row).execute(query, params, prepare=prepare)

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status in (TransactionStatus.INTRANS,
                                                    TransactionStatus.INERROR)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def adopt(dialect: PostgresDialect, raw: psycopg.Connection[Any]) -> AdoptedConnection:
    """``raw`` checked (see the module docstring) and wrapped."""
    if raw.closed:
        raise UnusableConnection("connection= is closed; nothing was written")
    status = raw.info.transaction_status
    if status == TransactionStatus.INERROR:
        raise NotInTransaction("connection= is in a failed transaction (an earlier statement "
                               "raised): roll it back first; nothing was written")
    if status == TransactionStatus.IDLE and raw.autocommit:
        raise NotInTransaction(
            "connection= is in autocommit mode outside a transaction: the queue's write would "
            "commit at once, not with yours. Begin one first (`with conn.transaction():`); "
            "nothing was written")
    if status not in (TransactionStatus.IDLE, TransactionStatus.INTRANS):
        raise UnusableConnection(f"connection= is busy ({status.name}: a statement is running "
                                 "on it); nothing was written")
    adopted = AdoptedConnection(raw)
    ours = _IDENTITIES.get(dialect)
    if ours is not None and _CHECKED.get(raw) == ours:
        return adopted
    with translate_errors():
        theirs = adopted.execute(dialect.queries["external_identity"]).fetchone()
        if ours != theirs:  # read (again: after a server restart) on the queue's connection
            ours = dialect.conn().execute(dialect.queries["external_identity"]).fetchone()
            if ours is not None:
                _IDENTITIES[dialect] = ours
    if theirs is None or theirs != ours:
        if theirs is not None and theirs["jobs"] is None and ours is not None and (
                theirs["database"], theirs["started"]) == (ours["database"], ours["started"]):
            where = "the queue's database, but its search_path does not find the queue's tables"
        else:
            where = f"the database {theirs['database'] if theirs else '?'!r}"
        raise ForeignConnection(
            f"connection= reaches {where}, not this queue's database {dialect.describe()}: "
            "the queue's write and yours would not commit together; nothing was written")
    _CHECKED[raw] = theirs
    return adopted
