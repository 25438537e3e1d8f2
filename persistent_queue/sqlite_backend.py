"""The SQLite storage backend: the queue's transitions in one database file.

Every method takes already-validated values (see :mod:`persistent_queue.queue`) and the
caller's ``now``; the SQL itself lives in ``sql/sqlite/*.sql``. Connections, transactions,
migrations, group commit and wake-ups live in :mod:`.sqlite_connection`; enqueueing in
:mod:`.sqlite_enqueue`; reading and housekeeping in :mod:`.sqlite_reads`; workflows
(dependencies, topics, dedup keys, bounded queues, schedules) in :mod:`.sqlite_workflows`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from .errors import (
    InvalidJobState,
    JobNotFound,
    LeaseLost,
    QueueAlreadyExists,
    QueueNotEmpty,
    QueueNotFound,
)
from .interfaces import Backend, NewJob
from .models import DeadLetter, DeletedQueue, Job, QueueInfo, ScheduleInfo
from .rows import dead_letter_from_row as _dead_letter_from_row
from .rows import job_from_claim as _job_from_claim
from .rows import job_from_row as _job_from_row
from .rows import queue_from_row as _queue_from_row
from .sqlite_connection import Q as Q
from .sqlite_connection import _split_statements as _split_statements
from .sqlite_enqueue import SQLiteEnqueue, _dumps
from .sqlite_reads import _STATE_INDEX_TERM as _STATE_INDEX_TERM
from .sqlite_reads import SQLiteReads
from .sqlite_rows import translate_errors
from .sqlite_workflows import SQLiteWorkflows


class _StaleLease(Exception):
    """Internal: a batch ack matched fewer rows than it named (rolls the batch back)."""


class SQLiteBackend(SQLiteEnqueue, SQLiteWorkflows, SQLiteReads, Backend):
    """Stores every queue in one SQLite database file (workflows: :mod:`.sqlite_workflows`).

    On a full disk (:mod:`.disk_reserve`) the writes that add jobs are refused while the disk
    reserve is released, and the writes that settle jobs make room and go on.
    """

    # -- new jobs: refused while the disk reserve is released ------------------------------

    def enqueue(self, queue: str, jobs: Sequence[NewJob], *, now: float,
                queue_defaults: tuple[int, float]) -> list[Job]:
        self._admit_enqueue()
        return super().enqueue(queue, jobs, now=now, queue_defaults=queue_defaults)

    def enqueue_uniform(self, queue: str, template: NewJob, payloads: Sequence[Any],
                        payload_jsons: Sequence[str], *, now: float,
                        queue_defaults: tuple[int, float]) -> list[Job]:
        self._admit_enqueue()
        return super().enqueue_uniform(queue, template, payloads, payload_jsons, now=now,
                                       queue_defaults=queue_defaults)

    def publish(self, topic: str, job: NewJob, *, now: float,
                queue_defaults: tuple[int, float]) -> list[Job]:
        self._admit_enqueue()
        return super().publish(topic, job, now=now, queue_defaults=queue_defaults)

    def fire_schedule(self, name: str, *, now: float,
                      advance: Callable[[ScheduleInfo, float], tuple[float | None, int]],
                      queue_defaults: tuple[int, float]) -> Job | None:
        self._admit_enqueue()
        return super().fire_schedule(name, now=now, advance=advance,
                                     queue_defaults=queue_defaults)

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

    # -- the worker registry: settles on a full disk like claims and acks -------------------

    def register_worker(self, worker_id: str, *, kind: str, host: str, pid: int,
                        queues: list[str], now: float) -> None:
        self._with_room(lambda: super(SQLiteBackend, self).register_worker(
            worker_id, kind=kind, host=host, pid=pid, queues=queues, now=now))

    def heartbeat_worker(self, worker_id: str, *, processed: int, failed: int,
                         now: float) -> None:
        self._with_room(lambda: super(SQLiteBackend, self).heartbeat_worker(
            worker_id, processed=processed, failed=failed, now=now))

    def stop_worker(self, worker_id: str, now: float) -> None:
        self._with_room(lambda: super(SQLiteBackend, self).stop_worker(worker_id, now))

    # -- the lease --------------------------------------------------------------------------

    def claim(
        self, queue: str, *, limit: int, visibility_timeout: float | None, now: float
    ) -> list[Job]:
        return self._with_room(lambda: self._grouped(lambda: self._claim_now(
            queue, limit=limit, visibility_timeout=visibility_timeout, now=now)))

    def _claim_now(
        self, queue: str, *, limit: int, visibility_timeout: float | None, now: float
    ) -> list[Job]:
        params = {"queue": queue, "limit": limit, "visibility_timeout": visibility_timeout,
                  "now": now}
        conn = self._conn()
        with translate_errors():
            cursor = conn.cursor()
            cursor.row_factory = None  # plain tuples, read by position
            if self.soft_claims and not getattr(self._local, "atomic", False):
                try:
                    conn.execute("PRAGMA synchronous = NORMAL")
                    rows = cursor.execute(Q["claim"], params).fetchall()
                finally:
                    self._restore_full_sync(conn)
            else:
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
        # A consumer's job threads claim and ack concurrently: they share commits too.
        self._with_room(lambda: self._grouped(lambda: self._ack_now(job_id, token, now)))

    def _ack_now(self, job_id: int, token: str, now: float) -> None:
        conn = self._conn()
        with translate_errors():
            changed = conn.execute(Q["ack"], {"id": job_id, "token": token, "now": now}).rowcount
            if changed != 1:
                raise self._diagnose_lease(conn, job_id, token, now, "ack")

    def ack_many(self, leases: Sequence[tuple[int, str]], now: float) -> None:
        self._with_room(lambda: self._ack_many_now(leases, now))

    def _ack_many_now(self, leases: Sequence[tuple[int, str]], now: float) -> None:
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
        return self._with_room(lambda: self._nack_now(job_id, token, error=error, delay=delay,
                                                      backoff=backoff, now=now))

    def _nack_now(self, job_id: int, token: str, *, error: str | None, delay: float | None,
                  backoff: Callable[[int], float], now: float) -> Job | DeadLetter:
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
        return self._with_room(lambda: self._requeue_now(job_id, token, delay=delay, now=now))

    def _requeue_now(self, job_id: int, token: str, *, delay: float, now: float) -> Job:
        with self._transaction() as conn:
            params = {"id": job_id, "token": token, "now": now, "available_at": now + delay}
            if conn.execute(Q["requeue"], params).rowcount != 1:
                raise self._diagnose_lease(conn, job_id, token, now, "requeue")
            return _job_from_row(conn.execute(Q["get_job"], {"id": job_id}).fetchone())

    def extend(self, job_id: int, token: str, *, seconds: float, now: float) -> Job:
        return self._with_room(lambda: self._extend_now(job_id, token, seconds=seconds, now=now))

    def _extend_now(self, job_id: int, token: str, *, seconds: float, now: float) -> Job:
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
        return self._with_room(lambda: self._dead_letter_now(job_id, token, reason=reason,
                                                             error=error, now=now))

    def _dead_letter_now(self, job_id: int, token: str | None, *, reason: str,
                         error: str | None, now: float) -> DeadLetter:
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
        return self._with_room(lambda: self._reap_now(now))

    def _reap_now(self, now: float) -> int:
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
