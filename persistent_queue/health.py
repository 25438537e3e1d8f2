"""Database health, the one source for ``pq doctor``, ``/healthz`` and the admin console.

>>> from persistent_queue import Queue
>>> from persistent_queue.health import database_health
>>> report = database_health(Queue("data/queue.db"))
>>> report.ok, report.file_bytes, report.wal_bytes, report.problems

Cheap by default (a few pragmas and ``stat`` calls). ``integrity="quick"`` adds SQLite's
``quick_check`` and ``integrity=True`` (or ``"full"``) its ``integrity_check``; both read
every page (seconds on a large file). A database file deleted or replaced under the running
process (:func:`file_error`) is a problem: nothing written from then on would last.

Whether the database takes writes is :class:`WriteProbe`'s: one small durable write at most
every couple of seconds however often it is asked, never waited for more than a second.

On PostgreSQL the report describes the server as a client sees it: ``path`` is the URL with
its password masked, ``file_bytes`` the database's size, ``server_version`` the server's; the
disk belongs to the server, so there are no disk or WAL figures (0) and no disk checks, and
the integrity check is the backend's consistency query. Using more than
``CONNECTIONS_WARNING_FRACTION`` of ``max_connections`` is a warning.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import DatabaseMissing
from .queue import Queue
from .storage.sqlite.connection import SQLiteConnections

#: Less free disk than this (bytes) makes the database unhealthy.
MIN_FREE_BYTES = 100 * 1024 * 1024
#: A write-ahead log larger than this is a warning: a long reader may be blocking checkpoints.
WAL_WARNING_BYTES = 64 * 1024 * 1024
#: Less than this fraction of the disk free is a warning.
DISK_WARNING_FRACTION = 0.10
#: More than this fraction of the server's ``max_connections`` in use is a warning.
CONNECTIONS_WARNING_FRACTION = 0.8
#: :class:`WriteProbe` writes at most once per this many seconds, however often it is asked.
WRITE_PROBE_INTERVAL = 2.0
#: A :class:`WriteProbe` caller waits at most this many seconds for the write: a write still
#: waiting then (another connection holds the write lock, or the disk hangs) is a failure.
WRITE_PROBE_WAIT = 1.0
#: An idle probe thread looks this often (seconds) whether its probe is still in use.
_PROBE_IDLE_LOOK = 10.0

_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
_AUTO_VACUUM = {0: "NONE", 1: "FULL", 2: "INCREMENTAL"}

Integrity = bool | Literal["quick", "full"]


@dataclass(frozen=True, slots=True)
class DatabaseHealth:
    """One reading of the database's health.

    ``integrity`` is None unless a check was asked for; then ``"ok"`` or SQLite's report.
    ``file_error`` says why the path no longer names the file the process has open (deleted
    or replaced: SQLite only), else None.
    ``free_disk_bytes``/``total_disk_bytes`` describe the file system holding the database
    (0 on PostgreSQL: the disk is the server's). ``backend`` is ``"sqlite"`` or
    ``"postgresql"``; ``server_version``, ``connections`` and ``max_connections`` are
    PostgreSQL's. ``problems`` make the database unhealthy (``ok`` is False); ``warnings``
    need a look.
    """

    path: str
    file_bytes: int
    wal_bytes: int
    free_disk_bytes: int
    total_disk_bytes: int
    sqlite_version: str
    schema_version: int
    journal_mode: str
    synchronous: str
    auto_vacuum: str
    page_size: int
    page_count: int
    freelist_count: int
    busy_timeout_ms: int
    integrity: str | None = None
    min_free_bytes: int = MIN_FREE_BYTES
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    backend: str = "sqlite"
    server_version: str = ""
    connections: int = 0
    max_connections: int = 0
    file_error: str | None = None

    @property
    def server(self) -> bool:
        """Whether the database is a server (PostgreSQL) rather than a local file."""
        return self.backend != "sqlite"

    @property
    def ok(self) -> bool:
        """No problem found (the file, integrity if checked, WAL mode, free disk)."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with ``ok`` included."""
        data = dataclasses.asdict(self)
        data["ok"] = self.ok
        return data


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mib(count: int) -> str:
    return f"{count / (1024 * 1024):.0f} MiB"


def _integrity(queue: Queue, integrity: Integrity) -> tuple[dict[str, Any], str | None]:
    if integrity == "quick":
        facts = queue.backend.database_facts()
        found = queue.check_integrity()
        return facts, "ok" if not found else "\n".join(found)
    facts = queue.backend.database_facts(integrity=bool(integrity))
    report = facts.get("integrity")
    return facts, None if report is None else str(report)


def file_error(queue: Queue) -> str | None:
    """Why ``queue``'s database file is no longer the one this process opened (deleted, or
    replaced by another file), or None. One ``stat``; always None on PostgreSQL and for
    ``":memory:"``."""
    dialect = getattr(queue.backend, "dialect", None)
    if not isinstance(dialect, SQLiteConnections):
        return None
    try:
        dialect.verify_file()
    except DatabaseMissing as exc:
        return str(exc)
    return None


def _findings(journal_mode: str, integrity: str | None, wal_bytes: int, free: int, total: int,
              min_free_bytes: int) -> tuple[list[str], list[str]]:
    problems, warnings = [], []
    if integrity not in (None, "ok"):
        problems.append("integrity check failed: " + "; ".join(integrity.splitlines()[:5]))
    if journal_mode.lower() != "wal":
        problems.append(f"journal mode is {journal_mode}, not WAL: readers block writers")
    if free < min_free_bytes:
        problems.append(f"only {_mib(free)} free on the database's disk "
                        f"(at least {_mib(min_free_bytes)} needed)")
    elif total and free / total < DISK_WARNING_FRACTION:
        warnings.append(f"only {_mib(free)} free on the database's disk")
    if wal_bytes > WAL_WARNING_BYTES:
        warnings.append(f"the WAL is {_mib(wal_bytes)}: a long-running reader may be holding "
                        "back checkpoints")
    return problems, warnings


def database_health(queue: Queue, *, integrity: Integrity = False,
                    min_free_bytes: int = MIN_FREE_BYTES) -> DatabaseHealth:
    """Measure the health of ``queue``'s database (see :class:`DatabaseHealth`).

    ``integrity``: False (no check), ``"quick"`` (``quick_check``) or True/``"full"``
    (``integrity_check``). Raises ``StorageError`` if the database cannot be read.
    """
    facts, checked = _integrity(queue, integrity)
    if str(facts.get("backend", "sqlite")) != "sqlite":
        return _server_health(queue, facts, checked)
    path = Path(str(facts.get("path", os.fspath(queue.db))))
    folder = path.parent if path.parent.exists() else Path(".")
    disk = shutil.disk_usage(folder)
    synchronous = facts.get("synchronous")
    auto_vacuum = facts.get("auto_vacuum")
    wal_bytes = _size(path.with_name(path.name + "-wal"))
    journal_mode = str(facts.get("journal_mode", ""))
    problems, warnings = _findings(journal_mode, checked, wal_bytes, disk.free, disk.total,
                                   min_free_bytes)
    missing = file_error(queue)
    if missing is not None:
        problems.insert(0, missing)
    return DatabaseHealth(
        path=str(path),
        file_bytes=_size(path),
        wal_bytes=wal_bytes,
        free_disk_bytes=disk.free,
        total_disk_bytes=disk.total,
        sqlite_version=str(facts.get("sqlite_version", "")),
        schema_version=int(facts.get("user_version", queue.schema_version())),
        journal_mode=journal_mode,
        synchronous=_SYNCHRONOUS.get(synchronous, str(synchronous))
        if isinstance(synchronous, int) else str(synchronous),
        auto_vacuum=_AUTO_VACUUM.get(auto_vacuum, str(auto_vacuum))
        if isinstance(auto_vacuum, int) else str(auto_vacuum),
        page_size=int(facts.get("page_size", 0)),
        page_count=int(facts.get("page_count", 0)),
        freelist_count=int(facts.get("freelist_count", 0)),
        busy_timeout_ms=int(facts.get("busy_timeout_ms", 0)),
        integrity=checked,
        min_free_bytes=min_free_bytes,
        problems=problems,
        warnings=warnings,
        settings={k: v for k, v in facts.items() if k not in ("path", "integrity")},
        file_error=missing,
    )


def _server_health(queue: Queue, facts: dict[str, Any], checked: str | None) -> DatabaseHealth:
    """The report for a database server: no file, no local disk, connection headroom."""
    from .storage.postgres.url import mask_url

    problems: list[str] = []
    warnings: list[str] = []
    if checked not in (None, "ok"):
        problems.append("integrity check failed: " + "; ".join(checked.splitlines()[:5]))
    connections = int(facts.get("connections") or 0)
    max_connections = int(facts.get("max_connections") or 0)
    if max_connections and connections > CONNECTIONS_WARNING_FRACTION * max_connections:
        warnings.append(f"{connections} of the server's {max_connections} connections are in "
                        "use on this database")
    hidden = ("url", "integrity", "path")
    return DatabaseHealth(
        path=str(facts.get("url") or mask_url(os.fspath(queue.db))),
        file_bytes=int(facts.get("database_bytes") or 0),
        wal_bytes=0,
        free_disk_bytes=0,
        total_disk_bytes=0,
        sqlite_version="",
        schema_version=int(facts.get("user_version", queue.schema_version())),
        journal_mode=str(facts.get("journal_mode", "wal")),
        synchronous=str(facts.get("synchronous", "")),
        auto_vacuum="autovacuum",
        page_size=int(facts.get("page_size") or 0),
        page_count=int(facts.get("page_count") or 0),
        freelist_count=0,
        busy_timeout_ms=int(facts.get("busy_timeout_ms") or 0),
        integrity=checked,
        min_free_bytes=0,
        problems=problems,
        warnings=warnings,
        settings={k: v for k, v in facts.items() if k not in hidden},
        backend=str(facts.get("backend")),
        server_version=str(facts.get("server_version") or ""),
        connections=connections,
        max_connections=max_connections,
    )


@dataclass(frozen=True, slots=True)
class WriteCheck:
    """One answer of :class:`WriteProbe`.

    ``ok``: the last test write committed. ``error``: why not. ``write_ms``: how long that
    write took (None if it failed or is still waiting). ``checked_at``: when it was measured
    (Unix time). ``busy``: the write was still waiting when the caller stopped waiting.
    """

    ok: bool
    error: str | None
    write_ms: float | None
    checked_at: float
    busy: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The fields worth showing: ``write_ms`` or ``error``, ``checked_at``, ``busy``."""
        data: dict[str, Any] = {"checked_at": round(self.checked_at, 3)}
        if self.write_ms is not None:
            data["write_ms"] = self.write_ms
        if self.error is not None:
            data["error"] = self.error
        if self.busy:
            data["busy"] = True
        return data


class WriteProbe:
    """Whether ``queue``'s database takes writes, cheaply and within a bounded time.

    The test is a real, durable write (``set_value(key, now)``), so it also catches a
    read-only file, a full disk or a deleted database. It runs at most once per ``interval``
    seconds however often :meth:`check` is called (callers meanwhile get the last answer),
    one at a time, in a thread of the probe's own (one connection, whatever thread asks).
    A caller waits at most ``wait`` seconds for it: a write that has waited longer (another
    connection holds the write lock; the disk hangs) is reported as failed and ``busy``
    while it goes on waiting, up to the queue's busy timeout, in the probe's thread only.

    >>> probe = WriteProbe(queue, key="api.healthz")
    >>> probe.check().ok
    True
    """

    def __init__(self, queue: Queue, *, key: str, interval: float = WRITE_PROBE_INTERVAL,
                 wait: float = WRITE_PROBE_WAIT) -> None:
        self.queue = queue
        self.key = key
        self.interval = interval
        self.wait = wait
        self._cond = threading.Condition()
        self._result: WriteCheck | None = None
        self._result_at = 0.0
        self._started: float | None = None  # monotonic start of the write under way
        self._thread: threading.Thread | None = None

    def check(self) -> WriteCheck:
        """The last answer if younger than ``interval``, else a new one (see the class)."""
        with self._cond:
            now = time.monotonic()
            result = self._result
            if (self._started is None and result is not None
                    and now - self._result_at < self.interval):
                return result
            if self._started is None:
                self._started = now
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=_serve, args=(weakref.ref(self),),
                                                    name="pq-write-probe", daemon=True)
                    self._thread.start()
                self._cond.notify_all()
            started = self._started
            self._cond.wait_for(lambda: self._started is None,
                                timeout=max(0.0, started + self.wait - now))
            if self._started is None and self._result is not None:
                return self._result
        waited = time.monotonic() - started
        return WriteCheck(False, f"a test write has waited {waited:.1f} s (more than "
                          f"{self.wait:g} s): another connection holds the write lock, or "
                          "the disk is not answering", None, time.time(), busy=True)

    def _next(self) -> bool:
        """In the probe's thread: wait (a while) for a caller to ask; True if one did."""
        with self._cond:
            return self._cond.wait_for(lambda: self._started is not None,
                                       timeout=_PROBE_IDLE_LOOK)

    def _run(self) -> None:
        """In the probe's thread: the test write, its answer handed to the waiting callers."""
        began = time.monotonic()
        try:
            self.queue.set_value(self.key, f"{self.queue.now():.3f}")
        except Exception as exc:  # noqa: BLE001 - reported to the callers, never raised here
            result = WriteCheck(False, str(exc) or type(exc).__name__, None, time.time())
        else:
            result = WriteCheck(True, None, round((time.monotonic() - began) * 1000, 2),
                                time.time())
        with self._cond:
            self._result, self._result_at, self._started = result, time.monotonic(), None
            self._cond.notify_all()


def _serve(ref: weakref.ref[WriteProbe]) -> None:
    """A probe's thread: runs its writes until the probe is dropped. It holds the probe only
    while it waits or writes, so a dropped probe (its app gone) ends the thread."""
    while True:
        probe = ref()
        if probe is None:
            return
        if probe._next():
            probe._run()
        del probe
