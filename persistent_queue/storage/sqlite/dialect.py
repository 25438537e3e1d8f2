"""The SQLite dialect: what SQLite supplies to the shared core, beyond its connections.

A write runs through group commit (concurrent enqueues, claims and acks of this process's
threads share one transaction and one fsync, :mod:`.group_commit`) and, on a full disk,
through the disk reserve (:mod:`.disk_reserve`): writes that add jobs are refused while the
reserve is released, writes that settle jobs make room and go on. The enqueue fast paths are
the hottest statements of a producer (see ``bench/README.md``): a job for an existing,
unbounded queue is one autocommit ``INSERT ... SELECT``, a batch one ``INSERT ... SELECT ...
FROM json_each``. A claim, alone in full durability, commits without its own fsync
(``soft_claims``). After each write's commit the waiters of every process are woken
(:mod:`.wake`); nothing is sent per queue.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ...config import DISK_RESERVE_BYTES, Durability
from ...errors import StorageError, StorageFull
from .. import queries as sql
from ..base import NewJob
from ..dialect import Dialect
from .connection import SQLiteConnections
from .disk_reserve import DiskReserve
from .errors import translate_errors
from .external import AdoptedConnection, adopt

logger = logging.getLogger(__name__)
T = TypeVar("T")

Q = sql.queries("sqlite")
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Looked up once: the single enqueue runs them once per job.
_INSERT_JOB_IF_QUEUE = Q["insert_job_if_queue"]
_TRANSLATE_ERRORS = translate_errors()  # reusable: it holds no state

#: On a full disk, the longest a claim or an ack waits for readers of the WAL to let a
#: checkpoint empty it (seconds); then it goes on with the room of the disk reserve.
ROOM_WAIT = 2.0


class SQLiteDialect(SQLiteConnections, Dialect):
    """One SQLite database file (see the module docstring)."""

    name: ClassVar[str] = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, durability: Durability = "full",
                 busy_timeout: float = 60.0) -> None:
        self.queries = Q
        super().__init__(path, durability=durability, busy_timeout=busy_timeout)
        #: The space kept for claims and acks on a full disk (:mod:`.disk_reserve`); None in
        #: memory or with ``PQ_DISK_RESERVE_BYTES=0``.
        self.reserve: DiskReserve | None = None
        if self._memory_uri is None and DISK_RESERVE_BYTES > 0:
            self.reserve = DiskReserve(Path(self.path), DISK_RESERVE_BYTES)
            self.reserve.ensure()

    def describe(self) -> str:
        return str(self.path)

    def translate_errors(self) -> Any:
        return _TRANSLATE_ERRORS

    def adopt_connection(self, raw: sqlite3.Connection) -> AdoptedConnection:
        return adopt(self, raw)

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn()
        with translate_errors():
            if self.in_atomic():
                yield conn  # the caller's transaction is the snapshot
                return
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    # -- how a write runs -------------------------------------------------------------------

    def write(self, work: Callable[[], T], *, grouped: bool = False,
              adds_jobs: bool = False) -> T:
        local = self._local
        if local.writing or local.atomic:
            return self._write(work, grouped, adds_jobs)  # the outer write or block wakes
        local.writing = True
        try:
            return self._write(work, grouped, adds_jobs)
        finally:
            local.writing = False
            self.wake_waiters()  # committed (or rolled back: a spurious wake-up is harmless)

    def _write(self, work: Callable[[], T], grouped: bool, adds_jobs: bool) -> T:
        if adds_jobs:
            self._admit_enqueue()
            return self._grouped(work) if grouped else work()
        if grouped:
            return self._with_room(lambda: self._grouped(work))
        return self._with_room(work)

    def notify(self, conn: Any, queue: str) -> None:
        """Nothing to send per queue: every commit wakes the waiters (:mod:`.wake`)."""

    def _admit_enqueue(self) -> None:
        """Refuse a new job while the disk reserve is released, or while the disk has less
        than twice its size free besides it (:mod:`.disk_reserve`): that room is kept for
        claims and acks."""
        reserve = self.reserve
        if reserve is not None and not reserve.admits_new_jobs():
            raise StorageFull(
                f"the database or its disk is full: the disk of {self.path} has no room left "
                "for new jobs (claims and acks go on; free space, e.g. cleanup --vacuum, and "
                "enqueues resume)")

    def _with_room(self, work: Callable[[], T]) -> T:
        """Run a claim, an ack or another write that frees space, making room if the disk
        is full: first by a checkpoint that empties the WAL, then by releasing the disk
        reserve as well. Inside ``atomic()`` (no checkpoint can run there) it runs once."""
        for release in (False, True):
            try:
                result = work()
            except StorageFull:
                if self.reserve is None or self.in_atomic():
                    raise
            else:
                if self.reserve is not None and self.reserve.missing() and not self.in_atomic():
                    # Draining a full disk: empty the WAL after every write, so that it never
                    # takes the room the database file needs to grow into when its pages are
                    # copied back (a claimed job's row grows by its worker's id).
                    self._make_room(release=False)
                return result
            self._make_room(release=release)
        return work()

    def _make_room(self, *, release: bool) -> None:
        """Copy the WAL into the database file and empty it (a checkpoint), after deleting
        the disk reserve if ``release``: the copy may need room for the file to grow."""
        assert self.reserve is not None
        if release:
            self.reserve.release()
        if self._checkpointed():
            self.reserve.ensure()  # back only if the disk has room for it and some more

    def _checkpointed(self) -> bool:
        """``wal_checkpoint(TRUNCATE)``, waiting at most :data:`ROOM_WAIT` seconds for readers
        of the WAL (a long reader must not hold every claim for the busy timeout). True once
        the WAL is copied into the database file and emptied."""
        try:
            conn = self.conn()
            conn.execute(f"PRAGMA busy_timeout = {int(ROOM_WAIT * 1000):d}")
            try:
                return bool(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0)
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000):d}")
        except (sqlite3.Error, StorageError):
            return False

    # -- SQL the core builds or binds -------------------------------------------------------

    def param(self, name: str) -> str:
        return f":{name}"

    def array(self, values: Sequence[int]) -> str:
        return _dumps(list(values))

    def header_clause(self, index: int, key: str, value: Any, params: dict[str, Any]) -> str:
        params[f"hpath{index}"] = f'$."{key}"'
        if value is None:  # `= NULL` never matches: ask for a JSON null instead
            return f"json_type(headers, :hpath{index}) = 'null'"
        params[f"hval{index}"] = value
        return f"json_extract(headers, :hpath{index}) = :hval{index}"

    # -- the hot paths ----------------------------------------------------------------------

    def claim_rows(self, queue: str, limit: int, visibility_timeout: float | None,
                   now: float, worker: str | None) -> list[tuple[Any, ...]]:
        params = {"queue": queue, "limit": limit, "visibility_timeout": visibility_timeout,
                  "now": now, "worker": worker}
        conn = self.conn()
        with _TRANSLATE_ERRORS:
            cursor = conn.cursor()
            cursor.row_factory = None  # plain tuples, read by position
            if self.soft_claims and not self.in_atomic():
                try:
                    conn.execute("PRAGMA synchronous = NORMAL")
                    return cursor.execute(Q["claim"], params).fetchall()
                finally:
                    self._restore_full_sync(conn)
            return cursor.execute(Q["claim"], params).fetchall()

    def has_claimable(self, queue: str, now: float) -> bool:
        with _TRANSLATE_ERRORS:
            return self.conn().execute(
                Q["peek_claimable"], {"queue": queue, "now": now}).fetchone() is not None

    def insert_one(self, queue: str, job: NewJob,
                   now: float) -> tuple[int, int, float | None] | None:
        with _TRANSLATE_ERRORS:
            inserted = self.conn().execute(_INSERT_JOB_IF_QUEUE, {
                "queue": queue, "priority": job.priority, "payload": job.payload_json,
                "headers": job.headers_json, "max_attempts": job.max_attempts,
                "available_at": job.available_at, "now": now, "timeout": job.timeout,
            }).fetchall()
        if not inserted:
            return None
        (job_id, max_attempts, timeout), = inserted
        return job_id, max_attempts, timeout

    def insert_jobs(self, conn: sqlite3.Connection, queue: str, jobs: Sequence[NewJob],
                    now: float) -> list[int]:
        rows = [
            {"queue": queue, "priority": job.priority, "payload": job.payload_json,
             "headers": job.headers_json, "max_attempts": job.max_attempts,
             "available_at": job.available_at, "now": now, "timeout": job.timeout}
            for job in jobs
        ]
        if len(rows) == 1:
            first_id = conn.execute(Q["insert_job"], rows[0]).lastrowid
            assert first_id is not None
            return [first_id]
        conn.executemany(Q["insert_job"], rows)
        # Inside one write transaction AUTOINCREMENT ids are consecutive.
        last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        return list(range(last - len(rows) + 1, last + 1))

    def insert_uniform(self, conn: sqlite3.Connection, queue: str, template: NewJob,
                       payload_jsons: Sequence[str], now: float) -> list[int]:
        last_id = conn.execute(Q["insert_jobs_batch"], {
            "queue": queue, "priority": template.priority, "headers": template.headers_json,
            "max_attempts": template.max_attempts, "available_at": template.available_at,
            "now": now, "payloads": _dumps(payload_jsons), "timeout": template.timeout,
            "group_key": template.group_key,
        }).lastrowid
        assert last_id is not None
        # One statement inside one write transaction: AUTOINCREMENT ids are consecutive.
        return list(range(last_id - len(payload_jsons) + 1, last_id + 1))

    def ack_many_params(self, leases: Sequence[tuple[int, str]], now: float) -> dict[str, Any]:
        return {"leases": _dumps({job_id: token for job_id, token in leases}), "now": now}

    # -- housekeeping and health ------------------------------------------------------------

    def vacuum(self) -> None:
        self._with_room(self._vacuum)

    def _vacuum(self) -> None:
        """Return the free pages to the file system (the file shrinks once the WAL is copied
        into it)."""
        with translate_errors():
            # executescript steps the pragma to completion; execute() frees one page only.
            self.conn().executescript("PRAGMA incremental_vacuum;")
        if not self.truncate_wal():
            logger.warning("vacuum of %s: the WAL is still in use by a reader; the file "
                           "shrinks at a later checkpoint", self.path)

    def after_cleanup(self) -> None:
        if self.reserve is not None:
            self.reserve.ensure()  # enqueues resume once the freed space holds it again

    def quick_check(self) -> list[str]:
        with translate_errors():
            rows = self.conn().execute(Q["quick_check"]).fetchall()
        problems = [str(row[0]) for row in rows]
        return [] if problems == ["ok"] else problems

    def database_facts(self, *, integrity: bool = False) -> dict[str, Any]:
        """SQLite version and settings; with ``integrity`` also ``PRAGMA integrity_check``."""
        with translate_errors():
            conn = self.conn()
            facts: dict[str, Any] = {"engine": "sqlite", "path": str(self.path)}
            facts["sqlite_version"] = conn.execute(Q["health_sqlite_version"]).fetchone()[0]
            facts.update(dict(conn.execute(Q["health_settings"]).fetchone()))
            if integrity:
                rows = conn.execute(Q["health_integrity_check"]).fetchall()
                facts["integrity"] = "\n".join(str(row[0]) for row in rows)
        return facts
