"""Connections, transactions, migrations, group commit and wake-ups of the SQLite backend.

Concurrency model: one connection per thread (and per process: a connection is never reused
after ``fork``), WAL journal, autocommit mode with explicit ``BEGIN IMMEDIATE`` for
multi-statement transitions, so writers queue on SQLite's busy handler instead of failing.
``wait_for_change`` notices other connections' commits through ``PRAGMA data_version``, woken
by a byte that every commit sends to the waiters' sockets (:mod:`.wake`).
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ...config import WAL_SIZE_LIMIT, Durability
from ...errors import DatabaseMissing, SchemaTooNew, StorageError
from .. import queries as sql
from .checkpointer import BACKSTOP_PAGES, BUSY_WAL_LIMIT, Checkpointer
from .errors import translate_errors
from .group_commit import GroupCommit
from .wake import SAFETY_NET, Waiter, WakeCounts, WakeNotifier

logger = logging.getLogger(__name__)

Q = sql.queries("sqlite")
T = TypeVar("T")


def _split_statements(script: str) -> Iterator[str]:
    """Yield the complete SQL statements of a script (triggers included)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            buffer = ""
            if statement.rstrip(";").strip() and not all(
                part.strip().startswith("--") or not part.strip()
                for part in statement.splitlines()
            ):
                yield statement
    if buffer.strip() and not all(
        p.strip().startswith("--") or not p.strip() for p in buffer.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at end of migration: {buffer[:80]!r}")


class _ThreadState(threading.local):
    """Per-thread state, its flags False until set (read without a failed lookup)."""

    atomic = False  # inside an ``atomic()`` block or a commit group
    writing = False  # inside ``write()``: its end wakes the waiters, not each transaction


class SQLiteConnections:
    """Connections, transactions, migrations, group commit and waiting (the base of
    :class:`~.dialect.SQLiteDialect`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "full",
        busy_timeout: float = 60.0,
    ) -> None:
        # Absolute from the start: a process that changes its working directory later must
        # neither open another file nor take its own database for deleted (verify_file).
        self.path = Path(path) if str(path) == ":memory:" else Path(os.path.abspath(path))
        self.durability = durability
        self.busy_timeout = busy_timeout
        self._local: threading.local = _ThreadState()
        self._connections: list[tuple[int, sqlite3.Connection]] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        #: Group commit (:mod:`.group_commit`): concurrent enqueues, claims and acks of this
        #: process's threads share one transaction and one fsync. On by default where a
        #: commit waits for the disk (durability="full"); False commits each on its own.
        self.group_commit = durability == "full"
        #: In full durability a claim (alone, outside a group or ``atomic()`` block) commits
        #: without its own fsync: the next durable commit (an ack, an enqueue) syncs the WAL
        #: up to and including it. Only an OS crash or power loss can lose such a claim, and
        #: that also ends every consumer on this host: the job is then claimable again at
        #: restart, as if its lease had expired. Acks, nacks, enqueues and every other write
        #: keep their fsync. False syncs every claim as well.
        self.soft_claims = durability == "full"
        self._group = GroupCommit(self._run_group)
        #: ``":memory:"`` is one database shared by every thread of this backend (SQLite's
        #: in-memory VFS under a name of its own), not one per connection; it lives until
        #: ``close()``. It has no WAL (SQLite keeps its journal in memory): a reader waits
        #: while another thread commits.
        self._memory_uri: str | None = None
        if str(path) == ":memory:":
            self._memory_uri = f"file:/persistent-queue-{secrets.token_hex(8)}?vfs=memdb"
            # Nothing in memory is ever fsynced: no commit to share, no claim to soften.
            self.group_commit = self.soft_claims = False
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        #: In normal durability checkpoints are run by a thread of each process
        #: (:mod:`.checkpointer`) rather than inside the commit that fills the WAL. Full
        #: durability keeps SQLite's automatic checkpoints (every 1,000 pages, by the
        #: committing connection): there every commit fsyncs the WAL, and a WAL that grows
        #: instead of being reused makes each of those fsyncs write metadata too (measured:
        #: 0.7-0.95x). Fixed when the backend is opened.
        self.background_checkpoints = durability == "normal" and self._memory_uri is None
        self._checkpointer: Checkpointer | None = None
        self._checkpointer_lock = threading.Lock()
        #: (st_dev, st_ino) of the file the first connection opened (None for ``:memory:``):
        #: see :meth:`verify_file`. Later connections open it without creating it.
        self._identity: tuple[int, int] | None = None
        self._file_name = os.fspath(self.path)  # a str: stat() takes it faster than a Path
        #: What this process's waiters and writers did (:mod:`.wake`).
        self.wake_counts = WakeCounts()
        #: Wakes the waiters of every process after a commit; None for ``:memory:``.
        self._notifier: WakeNotifier | None = None
        with translate_errors():
            conn = self.conn()
            if self._memory_uri is None:
                found = os.stat(self.path)
                self._identity = (found.st_dev, found.st_ino)
            self._migrate(conn)
            self._start_checkpointer(conn)
        if self._memory_uri is None:
            self._notifier = WakeNotifier(self._file_name, self.wake_counts)

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        target: str | Path = self._memory_uri or self.path
        if self._identity is not None:
            # Once open, a missing file is an error, never a fresh empty database (mode=rw).
            self.verify_file()
            # "file://" and an empty authority: a path that starts with "//" stays a path.
            target = f"file://{urllib.parse.quote(os.fspath(self.path))}?mode=rw"
        conn = sqlite3.connect(
            target,
            uri=self._memory_uri is not None or self._identity is not None,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,
        )
        conn.row_factory = sqlite3.Row
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            # Must precede the first table: lets `cleanup(vacuum=True)` return space.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        synchronous = "FULL" if self.durability == "full" else "NORMAL"
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA foreign_keys = OFF")
        if self.background_checkpoints:
            # The thread checkpoints; this connection only if the WAL outgrows the backstop.
            conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES:d}")
            conn.execute(f"PRAGMA journal_size_limit = {BUSY_WAL_LIMIT:d}")
        else:
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT:d}")
        return conn

    def _start_checkpointer(self, conn: sqlite3.Connection) -> None:
        """Start this process's checkpoint thread, unless it runs (or is off).

        ``conn``, this thread's connection, gets SQLite's own checkpoint settings back if no
        thread can be started.
        """
        running = self._checkpointer
        if not self.background_checkpoints or (running is not None
                                               and running.pid == os.getpid()):
            return
        # Only in normal durability (see `background_checkpoints`), so NORMAL as its writers.
        checkpointer = Checkpointer(self.path, synchronous="NORMAL",
                                    quiet_wal_bytes=WAL_SIZE_LIMIT)
        with self._checkpointer_lock:  # held for no call that can block
            running = self._checkpointer
            if self._closed or (running is not None and running.pid == os.getpid()):
                return
            self._checkpointer = checkpointer
        try:
            checkpointer.start()  # a close() meanwhile has set its stop event: it ends at once
        except RuntimeError:  # no thread to be had (a container's limit)
            logger.warning("cannot start background checkpoints; SQLite checkpoints inside "
                           "commits instead", exc_info=True)
            self.background_checkpoints = False
            conn.execute("PRAGMA wal_autocheckpoint = 1000")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT:d}")
            return
        # A backend dropped without close() ends its thread too (never a parent's, in a child).
        weakref.finalize(self, checkpointer.stop, 0)

    def conn(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        if self._closed:
            raise StorageError("this queue has been closed")
        conn = self._connect()
        if self._checkpointer is not None:
            with translate_errors():
                self._start_checkpointer(conn)  # a forked child runs a thread of its own
        local.conn, local.pid = conn, os.getpid()
        # The baseline for `wait_for_change`: any commit by another connection from now on
        # is noticed, including one that lands between a failed claim and the wait.
        with translate_errors():
            local.data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        with self._connections_lock:
            self._connections.append((os.getpid(), conn))
        return conn

    def _grouped(self, work: Callable[[], T]) -> T:
        """Run one enqueue, claim or ack: through group commit when it is on, else at once.

        Inside ``atomic()`` the work joins the caller's transaction and is never grouped.
        """
        if getattr(self._local, "atomic", False):
            return work()
        self.verify_file()  # alone, the work commits by itself: no COMMIT of ours to check at
        if self.group_commit:
            return self._group.submit(work)
        return work()

    def _restore_full_sync(self, conn: sqlite3.Connection) -> None:
        """Back to ``synchronous = FULL`` after a soft claim, or this connection is dropped.

        A connection left at NORMAL would commit every later ack without an fsync, so if the
        restore fails the thread's connection is closed and forgotten (its next statement opens
        a fresh one at FULL). The claim itself stands: its jobs are returned as claimed.
        """
        try:
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error:
            logger.warning("could not restore synchronous=FULL; reconnecting", exc_info=True)
            self._local.conn = None
            with self._connections_lock:
                self._connections = [(pid, c) for pid, c in self._connections if c is not conn]
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing a broken connection
                logger.debug("error closing connection", exc_info=True)

    def close(self) -> None:
        """Close every connection this backend opened (in this process)."""
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        with self._checkpointer_lock:
            checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.stop(timeout=self.busy_timeout)
        if self._notifier is not None:
            self._notifier.close()
        for pid, conn in connections:
            if pid != os.getpid():
                continue  # a parent's connection, inherited by fork: never touch it
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing a broken connection
                logger.debug("error closing connection", exc_info=True)

    def verify_file(self) -> None:
        """Raise :class:`DatabaseMissing` unless the path still names the file this backend
        opened (same device and inode).

        A file deleted (or replaced: a restore, another process's fresh database) under the
        running process stays open and writable, but whatever is committed there is gone at
        restart. Every write transaction checks before it commits; one ``stat``, about a
        microsecond. Nothing to check for ``":memory:"``.
        """
        identity = self._identity
        if identity is None:
            return
        try:
            found = os.stat(self._file_name)
        except OSError as exc:
            raise DatabaseMissing(
                f"the database file {self.path} is gone ({exc.strerror}): it was deleted while "
                "this process had it open; nothing was written. Restart the process once the "
                "file is back (without it, the restart opens a new, empty database)") from None
        if (found.st_dev, found.st_ino) != identity:
            raise DatabaseMissing(
                f"the database file {self.path} was replaced by another file while this "
                "process had it open; nothing was written. Restart the process to use the "
                "new file")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: the write lock is taken up front, and the file
        is checked (:meth:`verify_file`) before the commit."""
        conn = self.conn()
        if getattr(self._local, "atomic", False):
            yield conn  # joins the caller's `atomic()` block, which commits or rolls back
            return
        with translate_errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                self.verify_file()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        if not self._local.writing:  # else the write wakes them, once
            self.wake_waiters()

    def wake_waiters(self) -> None:
        """Wake every thread of any process waiting in :meth:`wait_for_change` (after a
        commit). One ``stat`` when nobody waits."""
        notifier = self._notifier
        if notifier is not None:
            notifier.notify()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        steps = sql.migrations("sqlite")
        latest = len(steps)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > latest:
            raise SchemaTooNew(
                f"{self.path} has schema version {version}; this version of persistent-queue "
                f"knows up to {latest}. Upgrade persistent-queue to open it."
            )
        if version == latest:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process won?
            for number, name, script in steps:
                if number <= version:
                    continue
                logger.info("migrating %s to schema %d (%s)", self.path, number, name)
                for statement in _split_statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        with translate_errors():
            return int(self.conn().execute("PRAGMA user_version").fetchone()[0])

    # -- group commit -----------------------------------------------------------------------

    def _run_group(self, works: Sequence[Callable[[], Any]]) -> list[tuple[bool, Any]]:
        """Run several requests in one transaction, each in a savepoint of its own."""
        outcomes: list[tuple[bool, Any]] = []
        with self.transaction() as conn:
            self._local.atomic = True  # the requests' own transactions join this one
            try:
                for work in works:
                    conn.execute("SAVEPOINT grouped_request")
                    try:
                        value = work()
                    except Exception as exc:  # noqa: BLE001 - this request's own failure
                        if not conn.in_transaction:
                            raise  # SQLite rolled the whole group back: all of it fails
                        conn.execute("ROLLBACK TO grouped_request")
                        conn.execute("RELEASE grouped_request")
                        outcomes.append((False, exc))
                    else:
                        conn.execute("RELEASE grouped_request")
                        outcomes.append((True, value))
            finally:
                self._local.atomic = False
        return outcomes

    # -- waiting ----------------------------------------------------------------------------

    def wait_for_change(self, timeout: float, poll_interval: float,
                        queue: str | None = None) -> bool:
        """Sleep until another connection commits, or ``timeout`` passes. Returns if it did.
        ``queue`` is ignored: any commit wakes the caller.

        The thread sleeps on a socket of its own that writers wake after each commit
        (:mod:`.wake`), looking at the database at least every ``wake.SAFETY_NET`` seconds.
        Where there are no wake-ups it polls instead, the first checks sooner (a quarter,
        then half ``poll_interval``): work often arrives right after a consumer runs dry.
        """
        conn = self.conn()
        local = self._local
        counts = self.wake_counts
        deadline = time.monotonic() + timeout
        step = poll_interval / 4
        # Bound before the first look: a commit after that look sends this socket its byte.
        waiter = None if self._notifier is None else Waiter.open(self._notifier)
        try:
            with translate_errors():
                while True:
                    counts.checks += 1
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                    if version != local.data_version:
                        local.data_version = version
                        return True
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    if waiter is not None:
                        waiter.wait(min(remaining, SAFETY_NET))
                        continue
                    time.sleep(min(step, remaining))
                    step = min(step * 2, poll_interval)
        finally:
            if waiter is not None:
                waiter.close()

    def truncate_wal(self) -> bool:
        """Copy the whole WAL into the database file and empty it (``wal_checkpoint(TRUNCATE)``).

        Waits, up to ``busy_timeout``, for readers still on the WAL and for a checkpoint under
        way in another connection (the background thread's, which SQLite answers with busy
        at once). Returns True once the WAL is empty, False if it could not be in time.
        """
        deadline = time.monotonic() + self.busy_timeout
        with translate_errors():
            conn = self.conn()
            while conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.005)
        return True

    def execute_read(self, query: str, params: dict[str, Any] | Sequence[Any] = ()) -> list[Any]:
        """Run a read-only statement of the library's own (diagnostics, EXPLAIN)."""
        with translate_errors():
            return self.conn().execute(query, params).fetchall()
