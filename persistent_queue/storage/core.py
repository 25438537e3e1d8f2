"""The storage core: queues, enqueueing and the lease, written once for every dialect.

:class:`SQLBackend` implements :class:`~.base.Backend` on a :class:`~.dialect.Dialect` it
holds (``self.dialect``): every method takes already-validated values (see
:mod:`persistent_queue.queue`) and the caller's ``now``, and states its rule once; the dialect
runs it (connections, transactions, group commit or deadlock retry, wake-ups) and supplies the
SQL (``self.q``). Its layers: :mod:`.reads` (reads and housekeeping), :mod:`.workflows`
(dependencies, dedup keys, bounds, topics, schedules), :mod:`.control` (cancelling, progress,
operators' actions on one job, dead letters), this module (queues, enqueueing, the lease).

Concurrency: every fenced operation reads the job's row through a locking statement
(``select_leased``, ``lock_job``: ``FOR UPDATE`` on PostgreSQL, where writers run side by side;
a plain read on SQLite, whose write transaction holds the database), so two actors never both
act on one lease; a claim skips rows another claim holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import InvalidJobState, JobNotFound, LeaseLost, QueueAlreadyExists, QueueNotEmpty
from ..models import DeadLetter, DeletedQueue, Job, JobState, QueueInfo
from .base import RESULTS, NewJob
from .flow import FlowControl
from .rows import job_from_claim, job_from_row, make_job, queue_from_row

_READY = JobState.READY


#: The settings ``update_queue`` changes, and those of flow control among them.
_FLOW_SETTINGS = frozenset({"concurrency", "rate_count", "rate_period", "group_concurrency",
                            "group_rate_count", "group_rate_period"})
#: A queue's alert thresholds (``Queue.alerts``).
_ALERT_SETTINGS = frozenset({"alert_depth", "alert_oldest_age", "alert_failure_rate",
                             "alert_dead_letters"})
_SETTINGS = frozenset({"max_attempts", "visibility_timeout", "max_size", "paused",
                       "timeout"}) | _FLOW_SETTINGS | _ALERT_SETTINGS


def _grouped(info: QueueInfo) -> bool:
    """Whether the queue has group limits (every job it stores is then in a group)."""
    return info.group_concurrency is not None or info.group_rate_limit is not None


class _StaleLease(Exception):
    """Internal: a batch ack matched fewer rows than it named (rolls the batch back)."""


class SQLBackend(FlowControl):
    """Every queue in one SQL database, on the dialect given (see the module docstring)."""

    # -- queues -----------------------------------------------------------------------------

    def create_queue(self, name: str, *, max_attempts: int, visibility_timeout: float,
                     max_size: int | None, exist_ok: bool, now: float,
                     timeout: float | None = None,
                     limits: dict[str, Any] | None = None) -> QueueInfo:
        with self.dialect.transaction() as conn:
            row = conn.execute(self.q["create_queue"], {
                "name": name, "max_attempts": max_attempts,
                "visibility_timeout": visibility_timeout, "max_size": max_size, "now": now,
                "timeout": timeout,
            }).fetchone()
            if row is not None:
                if limits:  # a new queue: no job to move into a group yet
                    self._set_queue(conn, name, limits, now)
                    return self._queue_row(conn, name)
                return queue_from_row(row)
            if not exist_ok:
                raise QueueAlreadyExists(f"queue {name!r} already exists")
            return self._queue_row(conn, name)

    def update_queue(self, name: str, changes: dict[str, Any], now: float) -> QueueInfo:
        unknown = set(changes) - _SETTINGS
        if unknown:  # pragma: no cover - guarded by Queue
            raise ValueError(f"cannot change {sorted(unknown)}")
        return self.dialect.write(lambda: self._update_queue_now(name, changes, now))

    def _update_queue_now(self, name: str, changes: dict[str, Any], now: float) -> QueueInfo:
        with self.dialect.transaction() as conn:
            before = self._queue_row(conn, name, lock=True)
            flow_changed = self._set_queue(conn, name, changes, now, before=before)
            if flow_changed or (before.paused and changes.get("paused") == 0):
                self.dialect.notify(conn, name)  # claimable again, or limits changed
            return self._queue_row(conn, name)

    def _set_queue(self, conn: Any, name: str, changes: dict[str, Any], now: float, *,
                   before: QueueInfo | None = None) -> bool:
        """Store new settings; True if they change the queue's limits. A queue that gains
        group limits moves its unfinished jobs without a group into the group ''."""
        p = self.dialect.param
        if not changes:
            return False
        # Column names come from the fixed `_SETTINGS` set, never from input.
        assignments = ", ".join(f"{column} = {p(column)}" for column in sorted(changes))
        conn.execute(f"UPDATE queues SET {assignments}, updated_at = {p('now')} "  # noqa: S608
                     f"WHERE name = {p('name')}", {**changes, "name": name, "now": now})
        if not set(changes) & _FLOW_SETTINGS:
            return False
        conn.execute(self.q["flow_refresh_flags"], {"name": name})
        after = self._queue_row(conn, name)
        if before is not None and after.rate_limit != before.rate_limit:
            conn.execute(self.q["flow_restart_rate"], {"name": name})
        if before is not None and after.group_rate_limit != before.group_rate_limit:
            conn.execute(self.q["flow_restart_group_rates"], {"name": name})
        grouped = after.group_concurrency is not None or after.group_rate_limit is not None
        was_grouped = before is not None and (before.group_concurrency is not None
                                              or before.group_rate_limit is not None)
        if grouped and not was_grouped and before is not None:
            conn.execute(self.q["flow_hold_inserts"])
            conn.execute(self.q["flow_default_group"], {"name": name})
        if after.concurrency is not None or after.rate_limit is not None or grouped:
            self._limited.add(name)
        return True

    def get_queue(self, name: str) -> QueueInfo | None:
        with self.dialect.translate_errors():
            row = self.dialect.conn().execute(self.q["get_queue"], {"name": name}).fetchone()
        return None if row is None else queue_from_row(row)

    def list_queues(self) -> list[QueueInfo]:
        with self.dialect.translate_errors():
            return [queue_from_row(r) for r in self.dialect.conn().execute(self.q["list_queues"])]

    def delete_queue(self, name: str, *, force: bool) -> DeletedQueue:
        with self.dialect.transaction() as conn:
            deleted = self._delete_queue_workflows(conn, name)  # before the queue's row lock
            self._queue_row(conn, name, lock=True)
            unfinished = conn.execute(self.q["count_unfinished"], {"name": name}).fetchone()["n"]
            if unfinished and not force:
                raise QueueNotEmpty(
                    f"queue {name!r} still has {unfinished} unfinished job(s); "
                    "pass force=True to delete them with it"
                )
            for query in ("delete_queue_jobs", "delete_queue_dead_letters",
                          "delete_queue_events", "delete_queue_flow_groups", "delete_queue"):
                conn.execute(self.q[query], {"name": name})
            return deleted

    def purge_queue(self, name: str) -> int:
        with self.dialect.transaction() as conn:
            return int(conn.execute(self.q["purge_queue"], {"queue": name}).rowcount)

    # -- enqueue ----------------------------------------------------------------------------

    def enqueue(self, queue: str, jobs: Sequence[NewJob], *, now: float,
                queue_defaults: tuple[int, float]) -> list[Job]:
        return self.dialect.write(
            lambda: self._enqueue_now(queue, jobs, now=now, queue_defaults=queue_defaults),
            grouped=True, adds_jobs=True)

    def _enqueue_now(self, queue: str, jobs: Sequence[NewJob], *, now: float,
                     queue_defaults: tuple[int, float]) -> list[Job]:
        if len(jobs) == 1:
            job = jobs[0]
            if job.dedup_key is None and not job.depends_on and job.group_key is None:
                inserted = self.dialect.insert_one(queue, job, now)
                if inserted is not None:
                    # Positional (fields in declaration order): once per enqueued job.
                    return [make_job(inserted[0], queue, job.payload, job.headers, job.priority,
                                     _READY, 0, inserted[1], None, None, now, job.available_at,
                                     now, None, None, None, False, (), None, inserted[2],
                                     None, None, None, False, None, None)]
        with self.dialect.transaction() as conn:
            info = self._ensure_queue(conn, queue, queue_defaults, now)
            dedup = any(job.dedup_key is not None for job in jobs)
            if (info.max_size is not None or dedup or any(job.depends_on for job in jobs)
                    or _grouped(info) or any(job.group_key is not None for job in jobs)):
                if info.max_size is not None or dedup:
                    # Bounds and dedup keys are read-then-write: one such enqueue per queue
                    # at a time. Dependencies need no queue lock: their parents' rows are
                    # share-locked instead.
                    info = self._queue_row(conn, queue, lock=True)
                stored = self._enqueue_workflow(conn, info, jobs, now)
                self.dialect.notify(conn, queue)
                return stored
            ids = self.dialect.insert_jobs(conn, queue, jobs, now)
        return [
            make_job(job_id, queue, job.payload, job.headers, job.priority, _READY, 0,
                     job.max_attempts or info.max_attempts, None, None, now, job.available_at,
                     now, None, None, None, False, (), None,
                     info.timeout if job.timeout is None else job.timeout,
                     None, None, None, False, None, None)
            for job_id, job in zip(ids, jobs, strict=True)
        ]

    def enqueue_uniform(self, queue: str, template: NewJob, payloads: Sequence[Any],
                        payload_jsons: Sequence[str], *, now: float,
                        queue_defaults: tuple[int, float]) -> list[Job]:
        if len(payloads) == 1:
            return self.enqueue(queue, [template], now=now, queue_defaults=queue_defaults)
        return self.dialect.write(lambda: self._enqueue_uniform_now(
            queue, template, payloads, payload_jsons, now=now, queue_defaults=queue_defaults),
            grouped=True, adds_jobs=True)

    def _enqueue_uniform_now(self, queue: str, template: NewJob, payloads: Sequence[Any],
                             payload_jsons: Sequence[str], *, now: float,
                             queue_defaults: tuple[int, float]) -> list[Job]:
        with self.dialect.transaction() as conn:
            info = self._ensure_queue(conn, queue, queue_defaults, now)
            if info.max_size is not None:  # bounded: counted and checked under its lock
                info = self._queue_row(conn, queue, lock=True)
                stored = self._enqueue_workflow(conn, info, [
                    NewJob(payload, text, dict(template.headers), template.headers_json,
                           template.priority, template.available_at, template.max_attempts,
                           timeout=template.timeout, group_key=template.group_key)
                    for payload, text in zip(payloads, payload_jsons, strict=True)
                ], now)
                self.dialect.notify(conn, queue)
                return stored
            ids = self.dialect.insert_uniform(conn, queue, template, payload_jsons, now)
        headers, priority, available_at = (template.headers, template.priority,
                                           template.available_at)
        max_attempts = template.max_attempts or info.max_attempts
        timeout = info.timeout if template.timeout is None else template.timeout
        return [
            make_job(job_id, queue, payload, dict(headers) if headers else {}, priority,
                     _READY, 0, max_attempts, None, None, now, available_at, now, None, None,
                     None, False, (), None, timeout, None, None, None, False, None,
                     template.group_key)
            for job_id, payload in zip(ids, payloads, strict=True)
        ]

    # -- the lease --------------------------------------------------------------------------

    def claim(self, queue: str, *, limit: int, visibility_timeout: float | None,
              now: float, worker: str | None = None) -> list[Job]:
        rows = self._claim_rows(queue, limit, visibility_timeout, now, worker)  # limits: flow.py
        jobs = [job_from_claim(row) for row in rows]
        if len(jobs) > 1:
            jobs.sort(key=lambda job: (-job.priority, job.id))
        return jobs

    def has_claimable(self, queue: str, now: float) -> bool:
        outlook = self.flow_outlook(queue, now)  # a limited queue: may its limits let one go?
        return self.dialect.has_claimable(queue, now) if outlook is None else outlook[0]

    def next_available_at(self, queue: str) -> float | None:
        with self.dialect.translate_errors():
            row = self.dialect.conn().execute(self.q["next_available_at"],
                                              {"queue": queue}).fetchone()
        return None if row is None or row["at"] is None else float(row["at"])

    def ack(self, job_id: int, token: str, now: float, result_json: str | None = None) -> None:
        # A consumer's job threads claim and ack concurrently: they may share commits too.
        self.dialect.write(lambda: self._ack_now(job_id, token, now, result_json),
                           grouped=True)

    def _ack_now(self, job_id: int, token: str, now: float, result_json: str | None) -> None:
        conn = self.dialect.conn()
        with self.dialect.translate_errors():
            # One statement marks the job done and stores its result: both or neither. A
            # process that claims from limited queues announces the freed slot.
            changed = conn.execute(self.q["ack_announce" if self._limited else "ack"], {
                "id": job_id, "token": token, "now": now, "result": result_json}).rowcount
            if changed != 1:
                raise self._diagnose_lease(conn, job_id, token, now, "ack")
            if result_json is not None:
                self.dialect.notify(conn, RESULTS)  # wakes Queue.result, not consumers

    def ack_many(self, leases: Sequence[tuple[int, str]], now: float) -> None:
        self.dialect.write(lambda: self._ack_many_now(leases, now))

    def _ack_many_now(self, leases: Sequence[tuple[int, str]], now: float) -> None:
        params = self.dialect.ack_many_params(leases, now)
        conn = self.dialect.conn()
        try:
            with self.dialect.transaction() as tx:
                if tx.execute(self.q["ack_many"], params).rowcount != len(leases):
                    raise _StaleLease
                self._announce_limited(tx)
        except _StaleLease:
            # Rolled back: find the first lease that is not current, as `ack` would.
            with self.dialect.translate_errors():
                for job_id, token in leases:
                    row = conn.execute(self.q["get_job"], {"id": job_id}).fetchone()
                    if (row is None or row["state"] != "leased" or row["lease_token"] != token
                            or row["lease_expires_at"] <= now):
                        raise self._diagnose_lease(conn, job_id, token, now, "ack") from None
            raise LeaseLost("cannot ack: a lease changed while acking; nothing was acked") \
                from None

    def nack(self, job_id: int, token: str, *, error: str | None, delay: float | None,
             backoff: Callable[[int], float], now: float,
             dead_letter_reason: str | None = None) -> Job | DeadLetter:
        return self.dialect.write(lambda: self._nack_now(
            job_id, token, error=error, delay=delay, backoff=backoff, now=now,
            dead_letter_reason=dead_letter_reason))

    def _nack_now(self, job_id: int, token: str, *, error: str | None, delay: float | None,
                  backoff: Callable[[int], float], now: float,
                  dead_letter_reason: str | None) -> Job | DeadLetter:
        with self.dialect.transaction() as conn:
            params = {"id": job_id, "token": token, "now": now}
            row = conn.execute(self.q["select_leased"], params).fetchone()
            if row is None:
                raise self._diagnose_lease(conn, job_id, token, now, "nack")
            attempts, max_attempts = row["attempts"], row["effective_max_attempts"]
            started = row["started_at"]
            self._event(conn, job_id, row["queue"], "failed", attempts, error, now,
                        worker=row["claimed_by"],
                        run_time=None if started is None else now - started)
            if row["cancel_requested_at"] is not None:
                # Failed after its cancellation was asked for: cancelled, never run again
                # (the failed event above names the worker and run time of the attempt).
                return self._cancel_row(conn, row, reason=None, now=now, running=True,
                                        attempt_recorded=True)
            if attempts >= max_attempts:
                reason = dead_letter_reason or f"failed {attempts} of {max_attempts} attempts"
                return self._dead_letter(conn, job_id, row["queue"], reason, error, attempts,
                                         now)
            wait = backoff(attempts) if delay is None else delay
            conn.execute(self.q["retry_later"], {**params, "available_at": now + wait,
                                                 "error": error})
            self.dialect.notify(conn, row["queue"])
            return job_from_row(conn.execute(self.q["get_job"], {"id": job_id}).fetchone())

    def requeue(self, job_id: int, token: str, *, delay: float, now: float) -> Job:
        return self.dialect.write(lambda: self._requeue_now(job_id, token, delay=delay, now=now))

    def _requeue_now(self, job_id: int, token: str, *, delay: float, now: float) -> Job:
        with self.dialect.transaction() as conn:
            params = {"id": job_id, "token": token, "now": now, "available_at": now + delay}
            held = conn.execute(self.q["select_leased"], params).fetchone()
            if held is None:
                raise self._diagnose_lease(conn, job_id, token, now, "requeue")
            if held["cancel_requested_at"] is not None:  # given back: not to run again
                return self._cancel_row(conn, held, reason=None, now=now, running=True)
            row = conn.execute(self.q["requeue"], params).fetchone()
            self.dialect.notify(conn, row["queue"])
            return job_from_row(row)

    def extend(self, job_id: int, token: str, *, seconds: float, now: float) -> Job:
        return self.dialect.write(lambda: self._extend_now(job_id, token, seconds=seconds,
                                                           now=now))

    def _extend_now(self, job_id: int, token: str, *, seconds: float, now: float) -> Job:
        conn = self.dialect.conn()
        with self.dialect.translate_errors():
            params = {"id": job_id, "token": token, "now": now, "until": now + seconds}
            row = conn.execute(self.q["extend"], params).fetchone()
            if row is None:
                raise self._diagnose_lease(conn, job_id, token, now, "extend")
            return job_from_row(row, lease_token=True)

    def dead_letter(self, job_id: int, token: str | None, *, reason: str, error: str | None,
                    now: float) -> DeadLetter:
        return self.dialect.write(lambda: self._dead_letter_now(job_id, token, reason=reason,
                                                                error=error, now=now))

    def _dead_letter_now(self, job_id: int, token: str | None, *, reason: str,
                         error: str | None, now: float) -> DeadLetter:
        with self.dialect.transaction() as conn:
            ran = True  # the job is leased: the dead-lettering ends an attempt
            if token is not None:
                row = conn.execute(self.q["select_leased"],
                                   {"id": job_id, "token": token, "now": now}).fetchone()
                if row is None:
                    raise self._diagnose_lease(conn, job_id, token, now, "dead-letter")
            else:
                row = conn.execute(self.q["lock_job"], {"id": job_id}).fetchone()
                if row is None:
                    if conn.execute(self.q["get_dead_letter"], {"id": job_id}).fetchone():
                        raise InvalidJobState(f"job {job_id} is already dead-lettered")
                    raise JobNotFound(f"no job with id {job_id}")
                if row["state"] in ("done", "cancelled"):
                    raise InvalidJobState(f"job {job_id} is {row['state']}; only unfinished "
                                          "jobs can be dead-lettered")
                if row["state"] == "leased" and row["lease_expires_at"] > now:
                    raise LeaseLost(f"job {job_id} is leased by a consumer; pass its lease "
                                    "token to dead-letter it")
                ran = row["state"] == "leased"
            started = row["started_at"] if ran else None
            return self._dead_letter(conn, job_id, row["queue"], reason, error,
                                     row["attempts"], now,
                                     worker=row["claimed_by"] if ran else None,
                                     run_time=None if started is None else now - started)

    def reap_expired(self, now: float) -> int:
        """Dead-letter every job whose lease expired on its last allowed attempt, and cancel
        every job whose lease expired after its cancellation was requested."""
        with self.dialect.translate_errors():
            if self.dialect.conn().execute(self.q["any_exhausted_lease"],
                                           {"now": now}).fetchone() is None:
                return 0  # the common case, answered without the write lock
        return self.dialect.write(lambda: self._reap_now(now))

    def _reap_now(self, now: float) -> int:
        with self.dialect.transaction() as conn:
            rows = conn.execute(self.q["find_exhausted_leases"], {"now": now}).fetchall()
            for row in rows:
                if row["cancel_requested_at"] is not None:  # its worker never confirmed
                    self._cancel_row(conn, row, reason=None, now=now, running=True)
                    continue
                started = row["started_at"]
                self._event(conn, row["id"], row["queue"], "lease_expired", row["attempts"],
                            "lease expired on the last allowed attempt", now,
                            worker=row["claimed_by"],
                            run_time=None if started is None else now - started)
                self._dead_letter(
                    conn, row["id"], row["queue"], "lease expired",
                    f"lease expired on attempt {row['attempts']} "
                    "(the consumer crashed, hung or took longer than the visibility timeout)",
                    row["attempts"], now,
                )
            return len(rows)
