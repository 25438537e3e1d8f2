"""Connections, transactions, migrations and wake-ups of the PostgreSQL backend.

One connection per thread and per process (a connection inherited through ``fork`` is never
touched), in autocommit mode with explicit transactions, as the SQLite backend does.
``wait_for_change`` listens on the thread's own connection for the notifications that every
statement making work claimable sends on commit, so an idle consumer wakes at once without
polling.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row

from ...config import Durability
from ...errors import InvalidArgument, SchemaTooNew, StorageError
from .. import queries as sql
from .errors import read_row, translate_errors
from .url import mask_url, scrub

logger = logging.getLogger(__name__)

Q = sql.queries("postgres")

Connection = psycopg.Connection[DictRow]

#: The advisory lock that serialises migrations (any constant unique to this library).
MIGRATION_LOCK = 0x7071_7565_7565  # "pqueue"


class _Listening:
    """Per-thread wake-up state: the queues other connections announced since the last wait
    that looked at them (psycopg calls this when a notification arrives mid-query)."""

    __slots__ = ("announced", "own_pid")

    def __init__(self, own_pid: int) -> None:
        self.announced: set[str] = set()
        self.own_pid = own_pid

    def __call__(self, notify: psycopg.Notify) -> None:
        self.note(notify.pid, notify.payload)

    def note(self, pid: int, queue: str) -> None:
        if pid != self.own_pid:
            self.announced.add(queue)

    def take(self, queue: str | None) -> bool:
        """Whether work was announced for ``queue`` (any queue if None); forgets it.
        Announcements for other queues are kept for a later wait on them."""
        if queue is None:
            found = bool(self.announced)
            self.announced.clear()
            return found
        if queue in self.announced:
            self.announced.discard(queue)
            return True
        return False


class PostgresConnections:
    """Connections, transactions, migrations and waiting (the base of
    :class:`~.dialect.PostgresDialect`)."""

    def __init__(
        self,
        url: str,
        *,
        durability: Durability = "full",
        busy_timeout: float = 60.0,
    ) -> None:
        self.url = url
        self.display_url = mask_url(url)
        try:
            self._conninfo = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise InvalidArgument(
                f"invalid PostgreSQL URL {self.display_url}: {scrub(str(exc), url)}"
            ) from None
        self.durability = durability
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[tuple[int, threading.Thread, Connection]] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        try:
            with translate_errors():
                self._migrate(self.conn())
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.display_url!r})"

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> Connection:
        options: dict[str, Any] = {}
        if "connect_timeout" not in self._conninfo:  # the URL's own setting wins
            options["connect_timeout"] = max(1, round(self.busy_timeout))
        try:
            conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row, **options)
        except psycopg.Error as exc:
            # libpq's message names host and port; never the password, but scrub it anyway.
            message = scrub(str(exc).strip(), self.url)
            raise StorageError(
                f"cannot connect to PostgreSQL at {self.display_url}: {message}"
            ) from None
        synchronous = "on" if self.durability == "full" else "off"
        lock_timeout = f"{max(1, round(self.busy_timeout * 1000))}ms"
        with translate_errors():
            conn.execute(Q["session_settings"], {"synchronous": synchronous,
                                                 "lock_timeout": lock_timeout})
        return conn

    def conn(self) -> Connection:
        local = self._local
        conn: Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            if not conn.closed or getattr(local, "atomic", False):
                return conn
            # The server closed it (restart, idle timeout): open a new one below.
        if self._closed:
            raise StorageError("this queue has been closed")
        conn = self._connect()
        local.conn, local.pid, local.listening = conn, os.getpid(), None
        self._remember(conn)
        return conn

    def _remember(self, conn: Connection) -> None:
        """Keep ``conn`` for ``close()``; close those of this process's finished threads.

        Each connection holds a server process: a thread-per-task caller would otherwise leave
        one idle connection per finished thread until ``close()``. Connections inherited
        through ``fork`` belong to the parent and are never touched.
        """
        pid = os.getpid()
        with self._connections_lock:
            finished = [c for p, thread, c in self._connections
                        if p == pid and (not thread.is_alive() or c.closed)]
            self._connections = [entry for entry in self._connections
                                 if all(entry[2] is not c for c in finished)]
            self._connections.append((pid, threading.current_thread(), conn))
        for old in finished:
            try:
                old.close()
            except psycopg.Error:  # pragma: no cover - closing a broken connection
                logger.debug("error closing connection", exc_info=True)

    def close(self) -> None:
        """Close every connection this backend opened (in this process)."""
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for pid, _thread, conn in connections:
            if pid != os.getpid():
                continue  # a parent's connection, inherited by fork: never touch it
            try:
                conn.close()
            except psycopg.Error:  # pragma: no cover - closing a broken connection
                logger.debug("error closing connection", exc_info=True)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """``BEGIN`` ... ``COMMIT`` on the thread's connection (rolled back on any error)."""
        conn = self.conn()
        if getattr(self._local, "atomic", False):
            yield conn  # joins the caller's `atomic()` block, which commits or rolls back
            return
        with translate_errors(), conn.transaction():
            yield conn

    # -- schema -----------------------------------------------------------------------------

    def _migrate(self, conn: Connection) -> None:
        steps = sql.migrations("postgres")
        latest = len(steps)
        version = self._stored_version(conn)
        if version == latest:
            return
        if version > latest:
            raise self._too_new(version, latest)
        with conn.transaction():
            conn.execute(Q["migration_lock"], {"key": MIGRATION_LOCK})
            conn.execute(Q["create_schema_migrations"])
            version = self._stored_version(conn)  # another process may have migrated
            if version > latest:
                raise self._too_new(version, latest)
            for number, name, script in steps:
                if number <= version:
                    continue
                logger.info("migrating %s to schema %d (%s)", self.display_url, number, name)
                conn.execute(script, prepare=False)
                conn.execute(Q["record_migration"], {"version": number, "name": name})

    @staticmethod
    def _stored_version(conn: Connection) -> int:
        row = conn.execute(Q["schema_migrations_exists"]).fetchone()
        if row is None or not row["present"]:
            return 0
        row = conn.execute(Q["schema_version"]).fetchone()
        return 0 if row is None else int(row["version"])

    def _too_new(self, version: int, latest: int) -> SchemaTooNew:
        return SchemaTooNew(
            f"{self.display_url} has schema version {version}; this version of "
            f"persistent-queue knows up to {latest}. Upgrade persistent-queue to open it."
        )

    def schema_version(self) -> int:
        with translate_errors():
            return self._stored_version(self.conn())

    # -- waiting ----------------------------------------------------------------------------

    def wait_for_change(self, timeout: float, poll_interval: float,
                        queue: str | None = None) -> bool:
        """Block until another connection commits claimable work, or ``timeout`` passes.

        The thread's connection starts listening on its first wait, and that first call
        returns True at once: work committed before the LISTEN would not be announced, so the
        caller must look again. From then on every notification is kept (psycopg hands those
        that arrive during other statements to :class:`_Listening`), so none is lost between a
        failed claim and the next wait. With ``queue``, only work announced for that queue
        wakes the caller; announcements for other queues stay pending for a later wait on
        them. ``poll_interval`` is not needed: this never polls.
        """
        del poll_interval
        conn = self.conn()
        local = self._local
        with translate_errors():
            listening: _Listening | None = local.listening
            if listening is None:
                listening = _Listening(conn.info.backend_pid)
                conn.add_notify_handler(listening)
                conn.execute(Q["listen"])
                local.listening = listening
                return True
            deadline = time.monotonic() + timeout
            while True:
                self._drain(conn, listening)
                if listening.take(queue):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # poll(), not select(): a descriptor above 1,024 (a server holding many
                # sockets) is out of select()'s range.
                waiting = select.poll()
                waiting.register(conn.fileno(), select.POLLIN)
                waiting.poll(remaining * 1000)

    @staticmethod
    def _drain(conn: Connection, listening: _Listening) -> None:
        """Read the notifications the server sent while the connection was idle."""
        with conn.lock:
            pgconn = conn.pgconn
            pgconn.consume_input()
            if pgconn.status != psycopg.pq.ConnStatus.OK:
                raise psycopg.OperationalError("the server closed the connection")
            while (notify := pgconn.notifies()) is not None:
                listening.note(notify.be_pid, notify.extra.decode("utf-8", "replace"))

    def execute_read(self, query: str, params: dict[str, Any] | tuple[Any, ...] = ()) -> list[Any]:
        """Run a read-only statement of the library's own (diagnostics, EXPLAIN).

        Rows read by position or by column name, as the SQLite backend's ``sqlite3.Row``.
        """
        with translate_errors():
            cursor = self.conn().cursor(row_factory=read_row)
            return cursor.execute(query, params or None).fetchall()
