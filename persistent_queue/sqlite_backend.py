"""The SQLite storage backend: connections, migrations and the queue's transitions.

Every method takes already-validated values (see :mod:`persistent_queue.queue`) and the
caller's ``now``; the SQL itself lives in ``sql/sqlite/*.sql``.

Concurrency model: one connection per thread (and per process: a connection is never reused
after ``fork``), WAL journal, autocommit mode with explicit ``BEGIN IMMEDIATE`` for
multi-statement transitions, so writers queue on SQLite's busy handler instead of failing.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import sql
from .config import WAL_SIZE_LIMIT, Durability
from .errors import (
    InvalidJobState,
    JobNotFound,
    LeaseLost,
    QueueAlreadyExists,
    QueueNotEmpty,
    QueueNotFound,
    SchemaTooNew,
    StorageError,
)
from .group_commit import GroupCommit
from .interfaces import Backend, NewJob
from .models import (
    DeadLetter,
    DeletedQueue,
    Job,
    JobEvent,
    JobState,
    QueueInfo,
    QueueStats,
)
from .rows import dead_letter_from_row as _dead_letter_from_row
from .rows import job_from_claim as _job_from_claim
from .rows import job_from_row as _job_from_row
from .rows import loads as _loads
from .rows import make_job as _make_job
from .rows import queue_from_row as _queue_from_row
from .sqlite_rows import translate_errors
from .sqlite_workflows import SQLiteWorkflows
from .worker_store import WorkerStore

logger = logging.getLogger(__name__)

Q = sql.queries("sqlite")
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Looked up once: the single enqueue runs them once per job.
_INSERT_JOB_IF_QUEUE = Q["insert_job_if_queue"]
_READY = JobState.READY
_TRANSLATE_ERRORS = translate_errors()  # reusable: it holds no state


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


#: A term that lets SQLite use the partial index of unfinished jobs in that state.
_STATE_INDEX_TERM = {
    JobState.READY: "state IN ('ready', 'leased') AND ",
    JobState.LEASED: "state IN ('ready', 'leased') AND ",
    JobState.WAITING: "state = 'waiting' AND ",
}


class _StaleLease(Exception):
    """Internal: a batch ack matched fewer rows than it named (rolls the batch back)."""


class SQLiteBackend(SQLiteWorkflows, WorkerStore, Backend):
    """Stores every queue in one SQLite database file (workflows: :mod:`.sqlite_workflows`)."""

    _queries = Q
    _translate_errors = staticmethod(translate_errors)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "full",
        busy_timeout: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self.durability = durability
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[tuple[int, sqlite3.Connection]] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        #: Group commit (:mod:`.group_commit`): concurrent enqueues, claims and acks of this
        #: process's threads share one transaction and one fsync. On by default where a
        #: commit waits for the disk (durability="full"); False commits each on its own.
        self.group_commit = durability == "full"
        self._group = GroupCommit(self._run_group)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with translate_errors():
            self._migrate(self._conn())

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
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
        conn.execute(f"PRAGMA journal_size_limit = {int(WAL_SIZE_LIMIT)}")
        conn.execute("PRAGMA foreign_keys = OFF")
        return conn

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        if self._closed:
            raise StorageError("this queue has been closed")
        conn = self._connect()
        local.conn, local.pid = conn, os.getpid()
        # The baseline for `wait_for_change`: any commit by another connection from now on
        # is noticed, including one that lands between a failed claim and the wait.
        with translate_errors():
            local.data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        with self._connections_lock:
            self._connections.append((os.getpid(), conn))
        return conn

    def close(self) -> None:
        """Close every connection this backend opened (in this process)."""
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for pid, conn in connections:
            if pid != os.getpid():
                continue  # a parent's connection, inherited by fork: never touch it
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing a broken connection
                logger.debug("error closing connection", exc_info=True)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: the write lock is taken up front."""
        conn = self._conn()
        if getattr(self._local, "atomic", False):
            yield conn  # joins the caller's `atomic()` block, which commits or rolls back
            return
        with translate_errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Run this thread's writes inside the block in one transaction: all of them or none."""
        if getattr(self._local, "atomic", False):
            raise StorageError("atomic() blocks cannot be nested")
        with self._transaction():
            self._local.atomic = True
            try:
                yield
            finally:
                self._local.atomic = False

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
            return int(self._conn().execute("PRAGMA user_version").fetchone()[0])

    def quick_check(self) -> list[str]:
        with translate_errors():
            rows = self._conn().execute(Q["quick_check"]).fetchall()
        problems = [str(row[0]) for row in rows]
        return [] if problems == ["ok"] else problems

    # -- queues -----------------------------------------------------------------------------

    def create_queue(
        self,
        name: str,
        *,
        max_attempts: int,
        visibility_timeout: float,
        max_size: int | None,
        exist_ok: bool,
        now: float,
    ) -> QueueInfo:
        with self._transaction() as conn:
            row = conn.execute(Q["get_queue"], {"name": name}).fetchone()
            if row is not None:
                if not exist_ok:
                    raise QueueAlreadyExists(f"queue {name!r} already exists")
                return _queue_from_row(row)
            conn.execute(
                Q["create_queue"],
                {
                    "name": name,
                    "max_attempts": max_attempts,
                    "visibility_timeout": visibility_timeout,
                    "max_size": max_size,
                    "now": now,
                },
            )
            return _queue_from_row(conn.execute(Q["get_queue"], {"name": name}).fetchone())

    def update_queue(self, name: str, changes: dict[str, Any], now: float) -> QueueInfo:
        allowed = {"max_attempts", "visibility_timeout", "max_size", "paused"}
        unknown = set(changes) - allowed
        if unknown:  # pragma: no cover - guarded by Queue
            raise ValueError(f"cannot change {sorted(unknown)}")
        with self._transaction() as conn:
            if conn.execute(Q["get_queue"], {"name": name}).fetchone() is None:
                raise QueueNotFound(f"no queue named {name!r}")
            if changes:
                # Column names come from the fixed `allowed` set above, never from input.
                assignments = ", ".join(f"{column} = :{column}" for column in sorted(changes))
                conn.execute(
                    f"UPDATE queues SET {assignments}, updated_at = :now WHERE name = :name",  # noqa: S608
                    {**changes, "name": name, "now": now},
                )
            return _queue_from_row(conn.execute(Q["get_queue"], {"name": name}).fetchone())

    def get_queue(self, name: str) -> QueueInfo | None:
        with translate_errors():
            row = self._conn().execute(Q["get_queue"], {"name": name}).fetchone()
        return None if row is None else _queue_from_row(row)

    def list_queues(self) -> list[QueueInfo]:
        with translate_errors():
            return [_queue_from_row(r) for r in self._conn().execute(Q["list_queues"])]

    def delete_queue(self, name: str, *, force: bool) -> DeletedQueue:
        with self._transaction() as conn:
            if conn.execute(Q["get_queue"], {"name": name}).fetchone() is None:
                raise QueueNotFound(f"no queue named {name!r}")
            unfinished = conn.execute(Q["count_unfinished"], {"name": name}).fetchone()[0]
            if unfinished and not force:
                raise QueueNotEmpty(
                    f"queue {name!r} still has {unfinished} unfinished job(s); "
                    "pass force=True to delete them with it"
                )
            deleted = self._delete_queue_workflows(conn, name)
            for query in ("delete_queue_jobs", "delete_queue_dead_letters",
                          "delete_queue_events", "delete_queue"):
                conn.execute(Q[query], {"name": name})
            return deleted

    def purge_queue(self, name: str) -> int:
        with self._transaction() as conn:
            return conn.execute(Q["purge_queue"], {"queue": name}).rowcount

    # -- enqueue ----------------------------------------------------------------------------

    def enqueue(
        self,
        queue: str,
        jobs: Sequence[NewJob],
        *,
        now: float,
        queue_defaults: tuple[int, float],
    ) -> list[Job]:
        if self.group_commit and not getattr(self._local, "atomic", False):
            return self._group.submit(
                lambda: self._enqueue_now(queue, jobs, now=now, queue_defaults=queue_defaults))
        return self._enqueue_now(queue, jobs, now=now, queue_defaults=queue_defaults)

    def _run_group(self, works: Sequence[Callable[[], Any]]) -> list[tuple[bool, Any]]:
        """Run several requests in one transaction, each in a savepoint of its own."""
        outcomes: list[tuple[bool, Any]] = []
        with self._transaction() as conn:
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

    def _enqueue_now(
        self,
        queue: str,
        jobs: Sequence[NewJob],
        *,
        now: float,
        queue_defaults: tuple[int, float],
    ) -> list[Job]:
        if len(jobs) == 1:
            job = jobs[0]
            if job.dedup_key is None and not job.depends_on:
                with _TRANSLATE_ERRORS:
                    inserted = self._conn().execute(_INSERT_JOB_IF_QUEUE, {
                        "queue": queue, "priority": job.priority, "payload": job.payload_json,
                        "headers": job.headers_json, "max_attempts": job.max_attempts,
                        "available_at": job.available_at, "now": now,
                    }).fetchall()
                if inserted:
                    (job_id, max_attempts), = inserted
                    return [_make_job(job_id, queue, job.payload, job.headers, job.priority,
                                      _READY, 0, max_attempts, None, None, now,
                                      job.available_at, now, None, None, None, False, ())]
        rows = [
            {
                "queue": queue,
                "priority": job.priority,
                "payload": job.payload_json,
                "headers": job.headers_json,
                "max_attempts": job.max_attempts,
                "available_at": job.available_at,
                "now": now,
            }
            for job in jobs
        ]
        with self._transaction() as conn:
            info = self._ensure_queue(conn, queue, queue_defaults, now)
            if info.max_size is not None or any(
                job.dedup_key is not None or job.depends_on for job in jobs
            ):
                return self._enqueue_workflow(conn, info, jobs, now)
            insert = Q["insert_job"]
            if len(rows) == 1:
                first_id = conn.execute(insert, rows[0]).lastrowid
                assert first_id is not None
            else:
                conn.executemany(insert, rows)
                # Inside one write transaction AUTOINCREMENT ids are consecutive.
                last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
                first_id = last - len(rows) + 1
        return [
            self._new_job(job, first_id + index, queue, job.max_attempts or info.max_attempts,
                          now)
            for index, job in enumerate(jobs)
        ]

    def enqueue_uniform(self, queue: str, template: NewJob, payloads: Sequence[Any],
                        payload_jsons: Sequence[str], *, now: float,
                        queue_defaults: tuple[int, float]) -> list[Job]:
        if len(payloads) == 1:
            return self.enqueue(queue, [template], now=now, queue_defaults=queue_defaults)
        if self.group_commit and not getattr(self._local, "atomic", False):
            return self._group.submit(lambda: self._enqueue_uniform_now(
                queue, template, payloads, payload_jsons, now=now, queue_defaults=queue_defaults))
        return self._enqueue_uniform_now(queue, template, payloads, payload_jsons, now=now,
                                         queue_defaults=queue_defaults)

    def _enqueue_uniform_now(self, queue: str, template: NewJob, payloads: Sequence[Any],
                             payload_jsons: Sequence[str], *, now: float,
                             queue_defaults: tuple[int, float]) -> list[Job]:
        with self._transaction() as conn:
            info = self._ensure_queue(conn, queue, queue_defaults, now)
            if info.max_size is not None:  # bounded: counted and checked row by row
                return self._enqueue_workflow(conn, info, [
                    NewJob(payload, text, dict(template.headers), template.headers_json,
                           template.priority, template.available_at, template.max_attempts)
                    for payload, text in zip(payloads, payload_jsons, strict=True)
                ], now)
            last_id = conn.execute(Q["insert_jobs_batch"], {
                "queue": queue, "priority": template.priority, "headers": template.headers_json,
                "max_attempts": template.max_attempts, "available_at": template.available_at,
                "now": now, "payloads": _dumps(payload_jsons),
            }).lastrowid
        assert last_id is not None
        # One statement inside one write transaction: AUTOINCREMENT ids are consecutive.
        first_id = last_id - len(payloads) + 1
        headers, priority, available_at = template.headers, template.priority, \
            template.available_at
        max_attempts = template.max_attempts or info.max_attempts
        ready, make = JobState.READY, _make_job
        return [
            make(first_id + index, queue, payload, dict(headers) if headers else {}, priority,
                 ready, 0, max_attempts, None, None, now, available_at, now, None, None, None,
                 False, ())
            for index, payload in enumerate(payloads)
        ]

    @staticmethod
    def _new_job(job: NewJob, job_id: int, queue: str, max_attempts: int, now: float) -> Job:
        # Positional (fields in declaration order): this runs once per enqueued job.
        return _make_job(job_id, queue, job.payload, job.headers, job.priority, JobState.READY,
                         0, max_attempts, None, None, now, job.available_at, now, None, None,
                         None, False, ())

    def _ensure_queue(
        self, conn: sqlite3.Connection, name: str, defaults: tuple[int, float], now: float
    ) -> QueueInfo:
        row = conn.execute(Q["get_queue"], {"name": name}).fetchone()
        if row is None:
            max_attempts, visibility_timeout = defaults
            conn.execute(
                Q["ensure_queue"],
                {
                    "name": name,
                    "max_attempts": max_attempts,
                    "visibility_timeout": visibility_timeout,
                    "now": now,
                },
            )
            row = conn.execute(Q["get_queue"], {"name": name}).fetchone()
        return _queue_from_row(row)

    # -- the lease --------------------------------------------------------------------------

    def claim(
        self, queue: str, *, limit: int, visibility_timeout: float | None, now: float
    ) -> list[Job]:
        if self.group_commit and not getattr(self._local, "atomic", False):
            return self._group.submit(lambda: self._claim_now(
                queue, limit=limit, visibility_timeout=visibility_timeout, now=now))
        return self._claim_now(queue, limit=limit, visibility_timeout=visibility_timeout,
                               now=now)

    def _claim_now(
        self, queue: str, *, limit: int, visibility_timeout: float | None, now: float
    ) -> list[Job]:
        params = {"queue": queue, "limit": limit, "visibility_timeout": visibility_timeout,
                  "now": now}
        with translate_errors():
            cursor = self._conn().cursor()
            cursor.row_factory = None  # plain tuples, read by position
            rows = cursor.execute(Q["claim"], params).fetchall()
        jobs = [_job_from_claim(row) for row in rows]
        if len(jobs) > 1:
            jobs.sort(key=lambda job: (-job.priority, job.id))
        return jobs

    def has_claimable(self, queue: str, now: float) -> bool:
        with translate_errors():
            return self._conn().execute(
                Q["peek_claimable"], {"queue": queue, "now": now}
            ).fetchone() is not None

    def next_available_at(self, queue: str) -> float | None:
        with translate_errors():
            value = self._conn().execute(Q["next_available_at"], {"queue": queue}).fetchone()[0]
        return None if value is None else float(value)

    def wait_for_change(self, timeout: float, poll_interval: float,
                        queue: str | None = None) -> bool:
        """Sleep until another connection commits, or ``timeout`` passes. Returns if it did.
        ``queue`` is ignored: any commit wakes the caller.

        The first checks come sooner (a quarter, then half the interval): work often arrives
        right after a consumer runs dry, while a long idle wait costs one check per interval.
        """
        conn = self._conn()
        local = self._local
        deadline = time.monotonic() + timeout
        step = poll_interval / 4
        with translate_errors():
            while True:
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                if version != local.data_version:
                    local.data_version = version
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                time.sleep(min(step, remaining))
                step = min(step * 2, poll_interval)

    def _diagnose_lease(self, conn: sqlite3.Connection, job_id: int, token: str,
                        now: float, action: str) -> Exception:
        """Why a fenced operation matched no row: the specific error to raise."""
        row = conn.execute(Q["get_job"], {"id": job_id}).fetchone()
        if row is None:
            if conn.execute(Q["get_dead_letter"], {"id": job_id}).fetchone() is not None:
                return LeaseLost(f"cannot {action} job {job_id}: it is in the dead-letter table")
            return JobNotFound(f"no job with id {job_id}")
        state = row["state"]
        if state != "leased":
            return LeaseLost(f"cannot {action} job {job_id}: it is {state}, not leased")
        if row["lease_token"] != token:
            return LeaseLost(
                f"cannot {action} job {job_id}: the lease token is stale "
                "(the lease expired and another consumer claimed the job)"
            )
        return LeaseLost(
            f"cannot {action} job {job_id}: its lease expired "
            f"{now - row['lease_expires_at']:.3f}s ago"
        )

    def ack(self, job_id: int, token: str, now: float) -> None:
        if self.group_commit and not getattr(self._local, "atomic", False):
            # A consumer's job threads claim and ack concurrently: they share commits too.
            self._group.submit(lambda: self._ack_now(job_id, token, now))
            return
        self._ack_now(job_id, token, now)

    def _ack_now(self, job_id: int, token: str, now: float) -> None:
        conn = self._conn()
        with translate_errors():
            changed = conn.execute(Q["ack"], {"id": job_id, "token": token, "now": now}).rowcount
            if changed != 1:
                raise self._diagnose_lease(conn, job_id, token, now, "ack")

    def ack_many(self, leases: Sequence[tuple[int, str]], now: float) -> None:
        params = {"leases": _dumps({job_id: token for job_id, token in leases}), "now": now}
        conn = self._conn()
        try:
            with self._transaction() as tx:
                if tx.execute(Q["ack_batch"], params).rowcount != len(leases):
                    raise _StaleLease
        except _StaleLease:
            # Rolled back: find the first lease that is not current, as `ack` would.
            with translate_errors():
                for job_id, token in leases:
                    if conn.execute(Q["select_leased"], {"id": job_id, "token": token,
                                                         "now": now}).fetchone() is None:
                        raise self._diagnose_lease(conn, job_id, token, now, "ack") from None
            raise LeaseLost("cannot ack: a lease changed while acking; nothing was acked") \
                from None

    def nack(
        self,
        job_id: int,
        token: str,
        *,
        error: str | None,
        delay: float | None,
        backoff: Callable[[int], float],
        now: float,
    ) -> Job | DeadLetter:
        with self._transaction() as conn:
            params = {"id": job_id, "token": token, "now": now}
            row = conn.execute(Q["select_leased"], params).fetchone()
            if row is None:
                raise self._diagnose_lease(conn, job_id, token, now, "nack")
            attempts, max_attempts = row["attempts"], row["effective_max_attempts"]
            self._event(conn, job_id, row["queue"], "failed", attempts, error, now)
            if attempts >= max_attempts:
                return self._dead_letter(
                    conn, job_id, row["queue"], f"failed {attempts} of {max_attempts} attempts",
                    error, attempts, now,
                )
            wait = backoff(attempts) if delay is None else delay
            conn.execute(
                Q["retry_later"],
                {**params, "available_at": now + wait, "error": error},
            )
            return _job_from_row(conn.execute(Q["get_job"], {"id": job_id}).fetchone())

    def requeue(self, job_id: int, token: str, *, delay: float, now: float) -> Job:
        with self._transaction() as conn:
            params = {"id": job_id, "token": token, "now": now, "available_at": now + delay}
            if conn.execute(Q["requeue"], params).rowcount != 1:
                raise self._diagnose_lease(conn, job_id, token, now, "requeue")
            return _job_from_row(conn.execute(Q["get_job"], {"id": job_id}).fetchone())

    def extend(self, job_id: int, token: str, *, seconds: float, now: float) -> Job:
        conn = self._conn()
        with translate_errors():
            params = {"id": job_id, "token": token, "now": now, "until": now + seconds}
            row = conn.execute(Q["extend"], params).fetchone()
            if row is None:
                raise self._diagnose_lease(conn, job_id, token, now, "extend")
            return _job_from_row(row, lease_token=True)

    def dead_letter(
        self, job_id: int, token: str | None, *, reason: str, error: str | None, now: float
    ) -> DeadLetter:
        with self._transaction() as conn:
            if token is not None:
                row = conn.execute(
                    Q["select_leased"], {"id": job_id, "token": token, "now": now}
                ).fetchone()
                if row is None:
                    raise self._diagnose_lease(conn, job_id, token, now, "dead-letter")
            else:
                row = conn.execute(Q["get_job"], {"id": job_id}).fetchone()
                if row is None:
                    if conn.execute(Q["get_dead_letter"], {"id": job_id}).fetchone():
                        raise InvalidJobState(f"job {job_id} is already dead-lettered")
                    raise JobNotFound(f"no job with id {job_id}")
                if row["state"] == "done":
                    raise InvalidJobState(f"job {job_id} is done; only unfinished jobs can be "
                                          "dead-lettered")
                if row["state"] == "leased" and row["lease_expires_at"] > now:
                    raise LeaseLost(f"job {job_id} is leased by a consumer; pass its lease "
                                    "token to dead-letter it")
            return self._dead_letter(conn, job_id, row["queue"], reason, error,
                                     row["attempts"], now)

    def _dead_letter(self, conn: sqlite3.Connection, job_id: int, queue: str, reason: str,
                     error: str | None, attempts: int, now: float) -> DeadLetter:
        conn.execute(Q["insert_dead_letter"],
                     {"id": job_id, "reason": reason, "error": error, "now": now})
        conn.execute(Q["delete_job"], {"id": job_id})
        self._event(conn, job_id, queue, "dead_lettered", attempts, reason, now)
        self._after_dead_letter(conn, job_id, now)
        return _dead_letter_from_row(conn.execute(Q["get_dead_letter"], {"id": job_id}).fetchone())

    @staticmethod
    def _event(conn: sqlite3.Connection, job_id: int, queue: str, event: str,
               attempt: int | None, detail: str | None, now: float) -> None:
        conn.execute(Q["insert_event"], {"job_id": job_id, "queue": queue, "event": event,
                                         "attempt": attempt, "detail": detail, "now": now})

    def reap_expired(self, now: float) -> int:
        """Dead-letter every job whose lease expired on its last allowed attempt."""
        with translate_errors():
            conn = self._conn()
            if conn.execute(Q["find_exhausted_leases"], {"now": now}).fetchone() is None:
                return 0  # the common case, answered without the write lock
        with self._transaction() as conn:
            rows = conn.execute(Q["find_exhausted_leases"], {"now": now}).fetchall()
            for row in rows:
                self._event(conn, row["id"], row["queue"], "lease_expired", row["attempts"],
                            "lease expired on the last allowed attempt", now)
                self._dead_letter(
                    conn, row["id"], row["queue"], "lease expired",
                    f"lease expired on attempt {row['attempts']} "
                    "(the consumer crashed, hung or took longer than the visibility timeout)",
                    row["attempts"], now,
                )
            return len(rows)

    # -- dead letters -----------------------------------------------------------------------

    def dead_letters(self, queue: str | None, *, limit: int, offset: int) -> list[DeadLetter]:
        with translate_errors():
            if queue is None:
                rows = self._conn().execute(Q["list_all_dead_letters"],
                                            {"limit": limit, "offset": offset})
            else:
                rows = self._conn().execute(Q["list_dead_letters"],
                                            {"queue": queue, "limit": limit, "offset": offset})
            return [_dead_letter_from_row(row) for row in rows]

    def redrive(self, job_id: int | None, queue: str | None, *, now: float,
                queue_defaults: tuple[int, float]) -> list[int]:
        with self._transaction() as conn:
            if job_id is not None:
                row = conn.execute(Q["get_dead_letter"], {"id": job_id}).fetchone()
                if row is None:
                    if conn.execute(Q["get_job"], {"id": job_id}).fetchone() is not None:
                        raise InvalidJobState(f"job {job_id} is not in the dead-letter table")
                    raise JobNotFound(f"no dead-lettered job with id {job_id}")
                targets = [(row["id"], row["queue"])]
            else:
                targets = [(r["id"], r["queue"]) for r in
                           conn.execute(Q["dead_letter_ids_of_queue"], {"queue": queue})]
            for target_id, target_queue in targets:
                self._ensure_queue(conn, target_queue, queue_defaults, now)
                if conn.execute(Q["redrive_one"], {"id": target_id, "now": now}).rowcount == 0:
                    continue  # already brought back, with a job it depends on
                conn.execute(Q["delete_dead_letter"], {"id": target_id})
                self._event(conn, target_id, target_queue, "redriven", 0,
                            "moved back from the dead-letter table", now)
                self._after_redrive(conn, target_id, now)
            return [target_id for target_id, _ in targets]

    def purge_dead_letters(self, queue: str | None, *, before: float) -> int:
        with self._transaction() as conn:
            if queue is None:
                return conn.execute(Q["purge_all_dead_letters"], {"before": before}).rowcount
            return conn.execute(Q["purge_dead_letters"],
                                {"queue": queue, "before": before}).rowcount

    # -- reading ----------------------------------------------------------------------------

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
                with self._transaction() as conn:
                    count = conn.execute(Q["cleanup_done"], {"queue": name, "before": before,
                                                             "batch": batch}).rowcount
                removed += count
                if count < batch:
                    break
        while True:
            with self._transaction() as conn:
                count = conn.execute(Q["cleanup_events"], {"batch": batch}).rowcount
            if count < batch:
                break
        if vacuum:
            with translate_errors():
                # executescript steps the pragma to completion; execute() frees one page only.
                self._conn().executescript("PRAGMA incremental_vacuum;")
                self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

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

    def execute_read(self, query: str, params: dict[str, Any] | Sequence[Any] = ()) -> list[Any]:
        """Run a read-only statement of the library's own (diagnostics, EXPLAIN)."""
        with translate_errors():
            return self._conn().execute(query, params).fetchall()
