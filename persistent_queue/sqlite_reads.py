"""Reading and housekeeping for the SQLite backend: jobs, history, dead letters, stats,
cleanup and database facts (the worker registry, stored values and throughput come from
:class:`~persistent_queue.worker_store.WorkerStore`).

A base of :class:`~persistent_queue.sqlite_backend.SQLiteBackend`; the transitions that change
a job's state live there.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .config import DISK_RESERVE_BYTES, Durability
from .disk_reserve import DiskReserve
from .errors import JobNotFound, StorageError, StorageFull
from .models import (
    DeadLetter,
    Job,
    JobEvent,
    JobState,
    QueueInfo,
    QueueStats,
)
from .rows import dead_letter_from_row as _dead_letter_from_row
from .rows import job_from_row as _job_from_row
from .rows import loads as _loads
from .sqlite_connection import Q, SQLiteConnections
from .sqlite_rows import translate_errors
from .worker_store import WorkerStore

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: On a full disk, the longest a claim or an ack waits for readers of the WAL to let a
#: checkpoint empty it (seconds); then it goes on with the room of the disk reserve.
ROOM_WAIT = 2.0

#: A term that lets SQLite use the partial index of unfinished jobs in that state.
_STATE_INDEX_TERM = {
    JobState.READY: "state IN ('ready', 'leased') AND ",
    JobState.LEASED: "state IN ('ready', 'leased') AND ",
    JobState.WAITING: "state = 'waiting' AND ",
}


class SQLiteReads(SQLiteConnections, WorkerStore):
    """Read-mostly operations of the SQLite backend."""

    _queries = Q
    _translate_errors = staticmethod(translate_errors)

    def __init__(self, path: str | os.PathLike[str], *, durability: Durability = "full",
                 busy_timeout: float = 60.0) -> None:
        super().__init__(path, durability=durability, busy_timeout=busy_timeout)
        #: The space kept for claims and acks on a full disk (:mod:`.disk_reserve`); None in
        #: memory or with ``PQ_DISK_RESERVE_BYTES=0``.
        self.reserve: DiskReserve | None = None
        if self._memory_uri is None and DISK_RESERVE_BYTES > 0:
            self.reserve = DiskReserve(Path(self.path), DISK_RESERVE_BYTES)
            self.reserve.ensure()

    if TYPE_CHECKING:  # provided by SQLiteBackend and its workflow mixin
        def list_queues(self) -> list[QueueInfo]: ...
        def _workflow_counters(self, conn: sqlite3.Connection) -> dict[str, tuple[int, int]]: ...

    # -- jobs -------------------------------------------------------------------------------

    def get_job(self, job_id: int) -> Job:
        with translate_errors():
            conn = self._conn()
            row = conn.execute(Q["get_job"], {"id": job_id}).fetchone()
            if row is not None:
                return _job_from_row(row)
            dead = conn.execute(Q["get_dead_letter"], {"id": job_id}).fetchone()
        if dead is None:
            raise JobNotFound(f"no job with id {job_id}")
        letter = _dead_letter_from_row(dead)
        return Job(
            id=letter.id, queue=letter.queue, payload=letter.payload, headers=letter.headers,
            priority=letter.priority, state=JobState.DEAD, attempts=letter.attempts,
            max_attempts=letter.max_attempts or letter.attempts, lease_token=None,
            lease_expires_at=None, created_at=letter.created_at, available_at=letter.dead_at,
            updated_at=letter.dead_at, finished_at=letter.dead_at,
            last_error=letter.last_error, dedup_key=dead["dedup_key"],
            depends_on=tuple(_loads(dead["depends_on"]) or ()),
        )

    def list_jobs(
        self,
        queue: str | None,
        *,
        state: JobState | None,
        headers: dict[str, Any],
        limit: int,
        offset: int,
        newest_first: bool,
    ) -> list[Job]:
        clauses: list[str] = []
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if queue is not None:
            clauses.append("queue = :queue")
            params["queue"] = queue
        if state is not None:
            # The literal terms name a partial index holding only such jobs; done jobs are
            # read newest (or oldest) first by id, stopping after a page.
            clauses.append(_STATE_INDEX_TERM.get(state, "") + "state = :state")
            params["state"] = state.value
        for index, (key, value) in enumerate(sorted(headers.items())):
            # Header keys are validated against HEADER_KEY_PATTERN; the path is a parameter.
            params[f"hpath{index}"] = f'$."{key}"'
            if value is None:  # `= NULL` never matches: ask for a JSON null instead
                clauses.append(f"json_type(headers, :hpath{index}) = 'null'")
                continue
            clauses.append(f"json_extract(headers, :hpath{index}) = :hval{index}")
            params[f"hval{index}"] = value
        where = " AND ".join(clauses) or "1"
        order = "DESC" if newest_first else "ASC"
        query = (
            "SELECT *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q "  # noqa: S608
            f"WHERE q.name = jobs.queue)) AS effective_max_attempts FROM jobs WHERE {where} "
            f"ORDER BY id {order} LIMIT :limit OFFSET :offset"
        )
        with translate_errors():
            return [_job_from_row(row) for row in self._conn().execute(query, params)]

    def history(self, job_id: int) -> list[JobEvent]:
        with translate_errors():
            rows = self._conn().execute(Q["job_events"], {"job_id": job_id}).fetchall()
        return [
            JobEvent(job_id=r["job_id"], queue=r["queue"], at=r["at"], event=r["event"],
                     attempt=r["attempt"], detail=r["detail"])
            for r in rows
        ]

    def dead_letters(self, queue: str | None, *, limit: int, offset: int) -> list[DeadLetter]:
        with translate_errors():
            if queue is None:
                rows = self._conn().execute(Q["list_all_dead_letters"],
                                            {"limit": limit, "offset": offset})
            else:
                rows = self._conn().execute(Q["list_dead_letters"],
                                            {"queue": queue, "limit": limit, "offset": offset})
            return [_dead_letter_from_row(row) for row in rows]

    def stats(self, now: float) -> dict[str, QueueStats]:
        with translate_errors():
            conn = self._conn()
            conn.execute("BEGIN")  # one consistent snapshot for all the counts
            try:
                counts: dict[str, dict[str, Any]] = {
                    q.name: {"paused": q.paused} for q in self.list_queues()
                }
                for row in conn.execute(Q["count_by_state"]):
                    entry = counts.setdefault(row["queue"], {})
                    entry[row["state"]] = row["n"]
                for row in conn.execute(Q["count_pending_detail"], {"now": now}):
                    entry = counts.setdefault(row["queue"], {})
                    entry["ready_now"] = row["ready_now"]
                    entry["scheduled"] = row["scheduled"]
                    entry["expired"] = row["expired"]
                    if row["oldest_ready_at"] is not None:
                        entry["oldest_ready_age"] = max(0.0, now - row["oldest_ready_at"])
                for row in conn.execute(Q["count_dead"]):
                    counts.setdefault(row["queue"], {})["dead"] = row["n"]
                for row in conn.execute(Q["count_retries"]):
                    counts.setdefault(row["queue"], {})["retries"] = row["n"]
                for name, (hits, rejected) in self._workflow_counters(conn).items():
                    counts.setdefault(name, {}).update(dedup_hits=hits, rejected_full=rejected)
            finally:
                conn.execute("COMMIT")
        return {
            name: QueueStats(
                queue=name,
                waiting=entry.get("waiting", 0),
                ready=entry.get("ready_now", 0),
                scheduled=entry.get("scheduled", 0),
                leased=entry.get("leased", 0),
                expired=entry.get("expired", 0),
                done=entry.get("done", 0),
                dead=entry.get("dead", 0),
                paused=bool(entry.get("paused", False)),
                oldest_ready_age=entry.get("oldest_ready_age"),
                retries=entry.get("retries", 0),
                dedup_hits=entry.get("dedup_hits", 0),
                rejected_full=entry.get("rejected_full", 0),
            )
            for name, entry in sorted(counts.items())
        }

    # -- housekeeping -----------------------------------------------------------------------

    def cleanup(self, *, before: float, queue: str | None, batch: int, vacuum: bool) -> int:
        """Delete done jobs finished before ``before``, in short transactions."""
        names = [queue] if queue is not None else [q.name for q in self.list_queues()]
        with translate_errors():
            done_names = self._conn().execute(Q["done_queue_names"]).fetchall()
        if queue is None:
            names += sorted({row[0] for row in done_names} - set(names))
        removed = 0
        for name in names:
            while True:
                params = {"queue": name, "before": before, "batch": batch}
                count = self._with_room(partial(self._delete_batch, "cleanup_done", params))
                removed += count
                if count < batch:
                    break
        while self._with_room(partial(self._delete_batch, "cleanup_events",
                                      {"batch": batch})) >= batch:
            pass
        if vacuum:
            self._with_room(self._vacuum)
        if self.reserve is not None:
            self.reserve.ensure()  # enqueues resume once the freed space holds it again
        return removed

    def _delete_batch(self, query: str, params: dict[str, Any]) -> int:
        with self._transaction() as conn:
            return int(conn.execute(Q[query], params).rowcount)

    def _vacuum(self) -> None:
        """Return the free pages to the file system (the file shrinks once the WAL is copied
        into it)."""
        with translate_errors():
            # executescript steps the pragma to completion; execute() frees one page only.
            self._conn().executescript("PRAGMA incremental_vacuum;")
        if not self.truncate_wal():
            logger.warning("vacuum of %s: the WAL is still in use by a reader; the file "
                           "shrinks at a later checkpoint", self.path)

    # -- a full disk ------------------------------------------------------------------------

    def _admit_enqueue(self) -> None:
        """Refuse a new job while the disk reserve is released (:mod:`.disk_reserve`): the
        room it freed is kept for claims and acks until it can be put back."""
        reserve = self.reserve
        if reserve is not None and not reserve.ensure():
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
                return work()
            except StorageFull:
                if self.reserve is None or getattr(self._local, "atomic", False):
                    raise
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
            conn = self._conn()
            conn.execute(f"PRAGMA busy_timeout = {int(ROOM_WAIT * 1000):d}")
            try:
                return bool(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0)
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000):d}")
        except (sqlite3.Error, StorageError):
            return False

    # -- health -----------------------------------------------------------------------------

    def quick_check(self) -> list[str]:
        with translate_errors():
            rows = self._conn().execute(Q["quick_check"]).fetchall()
        problems = [str(row[0]) for row in rows]
        return [] if problems == ["ok"] else problems

    def database_facts(self, *, integrity: bool = False) -> dict[str, Any]:
        """SQLite version and settings; with ``integrity`` also ``PRAGMA integrity_check``."""
        with translate_errors():
            conn = self._conn()
            facts: dict[str, Any] = {"engine": "sqlite", "path": str(self.path)}
            facts["sqlite_version"] = conn.execute(Q["health_sqlite_version"]).fetchone()[0]
            facts.update(dict(conn.execute(Q["health_settings"]).fetchone()))
            if integrity:
                rows = conn.execute(Q["health_integrity_check"]).fetchall()
                facts["integrity"] = "\n".join(str(row[0]) for row in rows)
        return facts
