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
        idle_interval: the longest wait between looks while nothing changes.
    """

    def __init__(self, path: Path, *, synchronous: str = "FULL",
                 quiet_wal_bytes: int = 4 * 1024 * 1024, interval: float = 0.02,
                 idle_interval: float = 1.0) -> None:
        self.path = path
        self.synchronous = synchronous
        self.quiet_wal_bytes = quiet_wal_bytes
        self.interval = interval
        self.idle_interval = idle_interval
        #: The process that started the thread; in a forked child the thread does not exist.
        self.pid = os.getpid()
        #: Checkpoints run so far, and the WAL truncations among them (diagnostics, tests).
        self.checkpoints = 0
        self.truncations = 0
        self._wal = Path(f"{path}-wal")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pq-checkpoint {path.name}",
                                        daemon=True)

    @property
    def stop_event(self) -> threading.Event:
        """Set it to end the thread (what :meth:`stop` does, without waiting)."""
        return self._stop

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """End the thread and close its connection; a checkpoint under way finishes first."""
        self._stop.set()
        if self.pid == os.getpid() and self._thread.is_alive() \
                and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        seen: int | None = None
        copied = False  # commits were checkpointed since the WAL was last found quiet
        wait = 0.0
        try:
            while not self._stop.wait(wait):
                with _sqlite_calls:
                    if self._stop.is_set():
                        break
                    try:
                        if conn is None:
                            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None,
                                                   check_same_thread=False)
                            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                        version = conn.execute("PRAGMA data_version").fetchone()[0]
                        if version != seen:
                            seen = version
                            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                            self.checkpoints += 1
                            copied = True
                            wait = self.interval
                            continue
                        if copied:
                            copied = not self._truncate_if_large(conn)
                    except sqlite3.OperationalError as exc:
                        # Locked for a moment (a schema change, a WAL recovery, another
                        # process's checkpoint): try again next round.
                        if "locked" not in str(exc) and "busy" not in str(exc):
                            raise
                        wait = self.interval
                        continue
                wait = min(max(wait, self.interval) * 2, self.idle_interval)
        except sqlite3.Error:
            logger.warning("background checkpoints of %s stopped; SQLite's own automatic "
                           "checkpoints go on", self.path, exc_info=True)
        finally:
            if conn is not None:
                with _sqlite_calls:
                    conn.close()

    def _truncate_if_large(self, conn: sqlite3.Connection) -> bool:
        """After commits stop: copy the rest and empty a large WAL file. True when done."""
        try:
            size = self._wal.stat().st_size
        except FileNotFoundError:
            return True
        if size <= self.quiet_wal_bytes:
            return True
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            return False  # a reader or writer is still on the WAL: next quiet round
        self.checkpoints += 1
        self.truncations += 1
        return True
