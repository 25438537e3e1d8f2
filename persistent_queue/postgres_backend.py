"""The PostgreSQL storage backend: the queue's transitions on a shared server.

Mirrors :mod:`persistent_queue.sqlite_backend` method for method: same semantics, same
exceptions, same models, the caller's clock for every time. The SQL lives in
``sql/postgres/*.sql``; connections, transactions, migrations and wake-ups in
:mod:`.postgres_connection`; workflows (dependencies, topics, dedup keys, bounded queues,
schedules) in :mod:`.postgres_workflows`.

Concurrency model: where SQLite serialises writers on one lock, PostgreSQL locks rows. A
claim skips rows another claim holds (``FOR UPDATE SKIP LOCKED``); every fenced operation
locks the job's row before it reads it, so two actors never both act on one lease.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from psycopg.rows import tuple_row

from . import sql
from .errors import (
    DatabaseBusy,
    InvalidJobState,
    JobNotFound,
    LeaseLost,
    QueueAlreadyExists,
    QueueNotEmpty,
    QueueNotFound,
    StorageError,
)
from .interfaces import Backend, NewJob
from .models import DeadLetter, DeletedQueue, Job, JobState, QueueInfo
from .postgres_connection import Connection
from .postgres_reads import PostgresReads
from .postgres_rows import is_deadlock, translate_errors
from .postgres_workflows import PostgresWorkflows
from .rows import dead_letter_from_row as _dead_letter_from_row
from .rows import job_from_claim as _job_from_claim
from .rows import job_from_row as _job_from_row
from .rows import queue_from_row as _queue_from_row

Q = sql.queries("postgres")
logger = logging.getLogger(__name__)
T = TypeVar("T")

#: How many times an ack the server rolled back to break a deadlock is run again.
_DEADLOCK_RETRIES = 2


class _StaleLease(Exception):
    """Internal: a batch ack matched fewer rows than it named (rolls the batch back)."""


class PostgresBackend(PostgresWorkflows, PostgresReads, Backend):
    """Stores every queue in one PostgreSQL database (workflows: :mod:`.postgres_workflows`).

    ``url`` is a libpq URL (``postgresql://user@host:port/db``); the password comes from the
    URL or from libpq's environment (``PGPASSWORD``, ``~/.pgpass``) and never appears in a
    message or repr.
    """

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
            row = conn.execute(Q["create_queue"], {
                "name": name, "max_attempts": max_attempts,
                "visibility_timeout": visibility_timeout, "max_size": max_size, "now": now,
            }).fetchone()
            if row is not None:
                return _queue_from_row(row)
            if not exist_ok:
                raise QueueAlreadyExists(f"queue {name!r} already exists")
            return self._queue_row(conn, name)

    @staticmethod
    def _queue_row(conn: Connection, name: str, *, lock: bool = False) -> QueueInfo:
        row = conn.execute(Q["lock_queue" if lock else "get_queue"], {"name": name}).fetchone()
        if row is None:
            raise QueueNotFound(f"no queue named {name!r}")
        return _queue_from_row(row)

    def update_queue(self, name: str, changes: dict[str, Any], now: float) -> QueueInfo:
        allowed = {"max_attempts", "visibility_timeout", "max_size", "paused"}
        unknown = set(changes) - allowed
        if unknown:  # pragma: no cover - guarded by Queue
            raise ValueError(f"cannot change {sorted(unknown)}")
        with self._transaction() as conn:
            before = self._queue_row(conn, name, lock=True)
            if changes:
                # Column names come from the fixed `allowed` set above, never from input.
                assignments = ", ".join(f"{column} = %({column})s" for column in sorted(changes))
                conn.execute(
                    f"UPDATE queues SET {assignments}, updated_at = %(now)s "  # noqa: S608
                    "WHERE name = %(name)s",
                    {**changes, "name": name, "now": now},
                )
            if before.paused and changes.get("paused") == 0:
                self._notify(conn, name)  # resumed: its ready jobs are claimable again
            return self._queue_row(conn, name)

    def get_queue(self, name: str) -> QueueInfo | None:
        with translate_errors():
            row = self._conn().execute(Q["get_queue"], {"name": name}).fetchone()
        return None if row is None else _queue_from_row(row)

    def list_queues(self) -> list[QueueInfo]:
        with translate_errors():
            return [_queue_from_row(r) for r in self._conn().execute(Q["list_queues"])]

    def delete_queue(self, name: str, *, force: bool) -> DeletedQueue:
        with self._transaction() as conn:
            deleted = self._delete_queue_workflows(conn, name)  # before the queue's row lock
            self._queue_row(conn, name, lock=True)
            row = conn.execute(Q["count_unfinished"], {"name": name}).fetchone()
            unfinished = 0 if row is None else row["n"]
            if unfinished and not force:
                raise QueueNotEmpty(
                    f"queue {name!r} still has {unfinished} unfinished job(s); "
                    "pass force=True to delete them with it"
                )
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
        if len(jobs) == 1 and jobs[0].dedup_key is None and not jobs[0].depends_on:
            job = jobs[0]
            with translate_errors():
                row = self._conn().execute(Q["insert_job_if_queue"], {
                    "queue": queue, "priority": job.priority, "payload": job.payload_json,
                    "headers": job.headers_json, "max_attempts": job.max_attempts,
                    "available_at": job.available_at, "now": now,
                }).fetchone()
            if row is not None:
                return [self._new_job(job, row["id"], queue, row["max_attempts"], now)]
        with self._transaction() as conn:
            info = self._ensure_queue(conn, queue, queue_defaults, now)
            dedup = any(job.dedup_key is not None for job in jobs)
            if info.max_size is not None or dedup or any(job.depends_on for job in jobs):
                if info.max_size is not None or dedup:
                    # Bounds and dedup keys are read-then-write: one such enqueue per queue
                    # at a time (SQLite's single writer gives the same for free). Dependencies
                    # need no queue lock: their parents' rows are share-locked instead.
                    info = self._queue_row(conn, queue, lock=True)
                stored = self._enqueue_workflow(conn, info, jobs, now)
                self._notify(conn, queue)
                return stored
            ids = [row["id"] for row in conn.execute(Q["insert_jobs"], {
                "queue": queue, "now": now,
                "priorities": [job.priority for job in jobs],
                "payloads": [job.payload_json for job in jobs],
                "headers": [job.headers_json for job in jobs],
                "max_attempts": [job.max_attempts for job in jobs],
                "available_ats": [float(job.available_at) for job in jobs],
            })]
        if len(ids) != len(jobs):  # pragma: no cover - one row per array element
            raise StorageError(f"stored {len(ids)} of {len(jobs)} jobs")
        return [
            self._new_job(job, job_id, queue, job.max_attempts or info.max_attempts, now)
            for job_id, job in zip(ids, jobs, strict=True)
        ]

    @staticmethod
    def _new_job(job: NewJob, job_id: int, queue: str, max_attempts: int, now: float) -> Job:
        # Positional (fields in declaration order): this runs once per enqueued job.
        return Job(job_id, queue, job.payload, job.headers, job.priority, JobState.READY, 0,
                   max_attempts, None, None, now, job.available_at, now)

    def _ensure_queue(
        self, conn: Connection, name: str, defaults: tuple[int, float], now: float
    ) -> QueueInfo:
        row = conn.execute(Q["get_queue"], {"name": name}).fetchone()
        if row is None:
            max_attempts, visibility_timeout = defaults
            conn.execute(Q["ensure_queue"], {
                "name": name, "max_attempts": max_attempts,
                "visibility_timeout": visibility_timeout, "now": now,
            })
            row = conn.execute(Q["get_queue"], {"name": name}).fetchone()
        assert row is not None, "the queue was just created"
        return _queue_from_row(row)

    # -- the lease --------------------------------------------------------------------------

    def claim(
        self, queue: str, *, limit: int, visibility_timeout: float | None, now: float
    ) -> list[Job]:
        params = {"queue": queue, "limit": limit, "visibility_timeout": visibility_timeout,
                  "now": now}
        with translate_errors():
            cursor = self._conn().cursor(row_factory=tuple_row)  # read by position
            rows = cursor.execute(Q["claim"], params).fetchall()
        jobs = [_job_from_claim(row) for row in rows]
        if len(jobs) > 1:
            jobs.sort(key=lambda job: (-job.priority, job.id))
        return jobs

    def has_claimable(self, queue: str, now: float) -> bool:
        # Always "might": on PostgreSQL the claim itself is the cheap check. Unlike SQLite's
        # write lock, a claim that finds nothing (SKIP LOCKED) waits for no one and writes
        # nothing, so a read first only costs a round trip per dequeue (~15% of a single
        # dequeue + ack). The `peek_claimable` query stays for tools that want the answer.
        return True

    def next_available_at(self, queue: str) -> float | None:
        with translate_errors():
            row = self._conn().execute(Q["next_available_at"], {"queue": queue}).fetchone()
        return None if row is None or row["at"] is None else float(row["at"])

    def _diagnose_lease(self, conn: Connection, job_id: int, token: str,
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

    def _retrying_deadlocks(self, work: Callable[[], T]) -> T:
        """Run ``work`` again (twice at most) when PostgreSQL aborted it to break a deadlock.

        An ack releases the dependents of each job it finishes, locking them one parent at a
        time; two acks whose parents share dependents in crossing order can deadlock, and the
        server then rolls one of them back whole. That one is safe to run again: nothing of
        it was kept. Inside ``atomic()`` the caller's transaction is gone too: raised as is.
        """
        for attempt in range(_DEADLOCK_RETRIES + 1):
            try:
                return work()
            except DatabaseBusy as exc:
                if (attempt == _DEADLOCK_RETRIES or getattr(self._local, "atomic", False)
                        or not is_deadlock(exc)):
                    raise
                logger.info("an ack was rolled back to break a deadlock; running it again")
        raise AssertionError("unreachable")  # pragma: no cover

    def ack(self, job_id: int, token: str, now: float) -> None:
        self._retrying_deadlocks(lambda: self._ack_now(job_id, token, now))

    def _ack_now(self, job_id: int, token: str, now: float) -> None:
        conn = self._conn()
        with translate_errors():
            changed = conn.execute(Q["ack"], {"id": job_id, "token": token, "now": now}).rowcount
            if changed != 1:
                raise self._diagnose_lease(conn, job_id, token, now, "ack")

    def ack_many(self, leases: Sequence[tuple[int, str]], now: float) -> None:
        self._retrying_deadlocks(lambda: self._ack_many_now(leases, now))

    def _ack_many_now(self, leases: Sequence[tuple[int, str]], now: float) -> None:
        params = {"ids": [job_id for job_id, _ in leases],
                  "tokens": [token for _, token in leases], "now": now}
        conn = self._conn()
        try:
            with self._transaction() as tx:
                if tx.execute(Q["ack_many"], params).rowcount != len(leases):
                    raise _StaleLease
        except _StaleLease:
            # Rolled back: find the first lease that is not current, as `ack` would.
            with translate_errors():
                for job_id, token in leases:
                    row = conn.execute(Q["get_job"], {"id": job_id}).fetchone()
                    if (row is None or row["state"] != "leased" or row["lease_token"] != token
                            or row["lease_expires_at"] <= now):
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
            conn.execute(Q["retry_later"], {**params, "available_at": now + wait,
                                             "error": error})
            self._notify(conn, row["queue"])
            job = conn.execute(Q["get_job"], {"id": job_id}).fetchone()
            assert job is not None, "the row is locked by this transaction"
            return _job_from_row(job)

    def requeue(self, job_id: int, token: str, *, delay: float, now: float) -> Job:
        with self._transaction() as conn:
            params = {"id": job_id, "token": token, "now": now, "available_at": now + delay}
            row = conn.execute(Q["requeue"], params).fetchone()
            if row is None:
                raise self._diagnose_lease(conn, job_id, token, now, "requeue")
            self._notify(conn, row["queue"])
            return _job_from_row(row)

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
                row = conn.execute(Q["lock_job"], {"id": job_id}).fetchone()
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

    def _dead_letter(self, conn: Connection, job_id: int, queue: str, reason: str,
                     error: str | None, attempts: int, now: float) -> DeadLetter:
        letter = conn.execute(Q["insert_dead_letter"],
                              {"id": job_id, "reason": reason, "error": error, "now": now}
                              ).fetchone()
        assert letter is not None, "the job's row is locked by this transaction"
        conn.execute(Q["delete_job"], {"id": job_id})
        self._event(conn, job_id, queue, "dead_lettered", attempts, reason, now)
        self._after_dead_letter(conn, job_id, now)
        return _dead_letter_from_row(letter)

    @staticmethod
    def _event(conn: Connection, job_id: int, queue: str, event: str,
               attempt: int | None, detail: str | None, now: float) -> None:
        conn.execute(Q["insert_event"], {"job_id": job_id, "queue": queue, "event": event,
                                         "attempt": attempt, "detail": detail, "now": now})

    def reap_expired(self, now: float) -> int:
        """Dead-letter every job whose lease expired on its last allowed attempt."""
        with translate_errors():
            if self._conn().execute(Q["any_exhausted_lease"], {"now": now}).fetchone() is None:
                return 0  # the common case, answered without taking any lock
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

    def redrive(self, job_id: int | None, queue: str | None, *, now: float,
                queue_defaults: tuple[int, float]) -> list[int]:
        with self._transaction() as conn:
            if job_id is not None:
                row = conn.execute(Q["lock_dead_letter"], {"id": job_id}).fetchone()
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
            for name in sorted({name for _, name in targets}):
                self._notify(conn, name)
            return [target_id for target_id, _ in targets]

    def purge_dead_letters(self, queue: str | None, *, before: float) -> int:
        with self._transaction() as conn:
            if queue is None:
                return conn.execute(Q["purge_all_dead_letters"], {"before": before}).rowcount
            return conn.execute(Q["purge_dead_letters"],
                                {"queue": queue, "before": before}).rowcount
