"""Background checkpoints: the WAL is copied into the database file by a thread of its own.

By default SQLite checkpoints inside whichever commit pushes the WAL past 1,000 pages: that
enqueue, claim or ack then copies the pages into the database file and waits for two fsyncs
(the WAL's and the database's) before it returns.

A :class:`Checkpointer` runs those copies beside the work instead. While other connections
commit, it runs a ``PASSIVE`` checkpoint every ``interval`` seconds on a connection of its own
(``PASSIVE`` never blocks a reader or a writer and never waits for one: what it cannot copy
yet is left for the next round). While nothing changes it backs off to one look per
``idle_interval``. A SQLite backend in normal durability runs one per process, and its own
connections keep an automatic checkpoint only as a backstop (:data:`BACKSTOP_PAGES`). In full
durability every commit fsyncs the WAL, and a WAL that grows instead of being reused makes
each of those fsyncs write file metadata too: there SQLite's own checkpoints stay.

A WAL being written is never reset under a ``PASSIVE`` checkpoint (SQLite restarts the log
only when a writer finds it fully copied), so during a burst the WAL grows up to the backstop,
where the writer that crosses it checkpoints what little is left and resets it. Once commits
stop, the thread copies the rest, and a WAL file left larger than ``quiet_wal_bytes`` is
truncated (``TRUNCATE``, which a quiet database grants at once).

Checkpoints move no data between transactions: what a commit made durable stays so.

SQLite must not be inside a call in another thread when a process forks (the child would
inherit the mutexes it holds). Every SQLite call of this thread is made under one lock that
``os.fork`` takes first, so a fork waits for a running checkpoint to finish.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import urllib.parse
from pathlib import Path
from typing import Final

logger = logging.getLogger(__name__)

#: The WAL pages after which a committing connection checkpoints by itself while the thread
#: runs (SQLite's default is 1,000): reached during long bursts, where it resets the WAL.
BACKSTOP_PAGES: Final = 4000

#: ``journal_size_limit`` while the thread runs: above a full backstop's WAL (~16.5 MB), so a
#: busy WAL file is reused at each reset instead of truncated and grown again.
BUSY_WAL_LIMIT: Final = 32 * 1024 * 1024

_sqlite_calls = threading.Lock()


def _new_lock_in_child() -> None:
    global _sqlite_calls
    _sqlite_calls = threading.Lock()  # the parent's copy is held by the forking thread


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(
        before=lambda: _sqlite_calls.acquire(),
        after_in_parent=lambda: _sqlite_calls.release(),
        after_in_child=_new_lock_in_child,
    )


class Checkpointer:
    """One thread that checkpoints the WAL of the database at ``path`` while it is written.

    Args:
        path: the database file.
        synchronous: the ``synchronous`` setting of the thread's connection.
        quiet_wal_bytes: once commits stop, a larger WAL file is truncated.
        interval: seconds between checkpoints while other connections commit.
        idle_interval: the longest wait between looks while nothing changes (and between
            attempts while the database cannot be opened or checkpointed).
    """

    def __init__(self, path: Path, *, synchronous: str = "FULL",
                 quiet_wal_bytes: int = 4 * 1024 * 1024, interval: float = 0.02,
                 idle_interval: float = 5.0) -> None:
        self.path = path
        self.synchronous = synchronous
        self.quiet_wal_bytes = quiet_wal_bytes
        self.interval = interval
        self.idle_interval = idle_interval
        #: The process that started the thread; in a forked child the thread does not exist.
        self.pid = os.getpid()
        #: Checkpoints completed so far, the WAL truncations among them, and the rounds that
        #: failed with an error other than busy (diagnostics and tests).
        self.checkpoints = 0
        self.truncations = 0
        self.errors = 0
        self._wal = Path(f"{path}-wal")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pq-checkpoint {path.name}",
                                        daemon=True)

    def start(self) -> None:
        """Start the thread (``RuntimeError`` if the process cannot start one)."""
        self._thread.start()

    def is_alive(self) -> bool:
        return self.pid == os.getpid() and self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """End the thread and close its connection; a checkpoint under way finishes first.

        In a forked child it does nothing: the thread is the parent's, and so is the state of
        its event, which a fork may have copied mid-``wait`` with its lock held.
        """
        if self.pid != os.getpid():
            return
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        seen: int | None = None
        written = False  # commits were seen since the WAL was last found quiet
        failing = False  # the last round failed: logged once, not every round
        wait = 0.0
        while not self._stop.wait(wait):
            # Unless a round copies everything new, the next look comes later (up to
            # idle_interval): nothing changed, a reader pins the WAL, or an error.
            wait = min(max(wait, self.interval) * 2, self.idle_interval)
            with _sqlite_calls:
                if self._stop.is_set():
                    break
                try:
                    if conn is None:
                        # mode=rw: a database deleted under the process is an error here,
                        # never a fresh empty file at its path.
                        conn = sqlite3.connect(
                            f"file://{urllib.parse.quote(os.path.abspath(self.path))}?mode=rw",
                            uri=True, timeout=0, isolation_level=None,
                            check_same_thread=False)
                        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                    if version != seen:
                        written = True
                        if self._checkpoint(conn, "PASSIVE"):
                            seen, wait = version, self.interval
                    elif written:
                        written = not self._truncate_if_large(conn)
                    failing = False
                except sqlite3.Error as exc:
                    # Busy or locked for a moment (a schema change, a WAL recovery), or worse
                    # (a full disk, no file descriptors): try again later. Meanwhile the
                    # writers' backstop checkpoints.
                    if not _is_busy(exc):
                        self.errors += 1
                        if not failing:
                            logger.warning("background checkpoint of %s failed; retrying",
                                           self.path, exc_info=True)
                        failing = True
                        _close_quietly(conn)
                        conn = None
        with _sqlite_calls:
            _close_quietly(conn)

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> bool:
        """One checkpoint; True if it copied everything (not if a reader pins part of the WAL
        or another connection is checkpointing)."""
        busy, log, copied = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        if busy or copied < log:
            return False
        self.checkpoints += 1
        return True

    def _truncate_if_large(self, conn: sqlite3.Connection) -> bool:
        """After commits stop: empty a large WAL file. True when nothing is left to do.

        A ``PASSIVE`` round copies whatever is left first (without blocking anyone), so the
        ``TRUNCATE`` that follows, which holds the write lock, only resets the file.
        """
        try:
            size = self._wal.stat().st_size
        except FileNotFoundError:
            return True
        if size <= self.quiet_wal_bytes:
            return True
        if not self._checkpoint(conn, "PASSIVE") or not self._checkpoint(conn, "TRUNCATE"):
            return False  # a reader or another checkpoint is on the WAL: next quiet round
        self.truncations += 1
        return True


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _close_quietly(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except sqlite3.Error:  # pragma: no cover - closing a broken connection
            logger.debug("error closing the checkpoint connection", exc_info=True)
