"""The public face of the library: :class:`Queue`.

``Queue`` validates every argument, reads the clock, computes retry delays and waits for work;
the backend (SQLite by default) performs each transition atomically.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, overload

from . import config, validation
from .config import Durability
from .errors import InvalidArgument, QueueNotFound
from .models import (
    JSON,
    DeadLetter,
    DeletedQueue,
    Job,
    JobEvent,
    JobState,
    QueueInfo,
    QueueStats,
    ThroughputPoint,
    WorkerInfo,
)
from .retry import RetryPolicy
from .storage import Backend, NewJob, open_backend
from .storage.postgres.url import mask_url
from .workflows import WorkflowMixin, check_dedup_key, check_dependencies

logger = logging.getLogger(__name__)

_UNCHANGED: Any = object()
JobRef = Job | int


def _open_backend(
    target: str | os.PathLike[str] | Backend, durability: Durability, busy_timeout: float
) -> Backend:
    if isinstance(target, Backend):
        return target
    return open_backend(target, durability=durability, busy_timeout=busy_timeout)


class Queue(WorkflowMixin):
    """A persistent job queue: every named queue lives in one database.

    Args:
        db: path of the SQLite file (created with its parent directories), ``sqlite:///path``,
            or a PostgreSQL URL ``postgresql://user@host:port/database`` (password from the
            URL or libpq's environment; it never appears in a message or repr).
            Or a backend instance (``SQLiteBackend(...)``, ``PostgresBackend(...)``), used as
            it is (its own durability and busy timeout apply).
        durability: ``"full"`` (an acknowledged write survives power loss) or ``"normal"``
            (it survives a process crash; faster). On SQLite a claim (``dequeue``) is made
            durable by the next synced commit rather than its own fsync: power loss before
            then returns the job to the queue, as an expired lease would.
        visibility_timeout: default lease length for queues created implicitly.
        max_attempts: default deliveries before dead-lettering, for queues created implicitly.
        max_payload_bytes: largest encoded payload accepted.
        busy_timeout: seconds to wait for another writer before ``DatabaseBusy``.
        retry_policy: backoff after a ``nack`` without an explicit delay.
        clock: returns the current time in seconds since the epoch (injectable for tests).
        poll_interval: how often a waiting ``dequeue`` looks for new commits.
        dedup_window: seconds after a job with a dedup key is done during which an enqueue
            with the same key still returns it (default 0: only while it is unfinished).

    A ``Queue`` may be shared by threads (each uses its own connection) and survives ``fork``
    (the child opens new connections).
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | Backend = config.DEFAULT_DB_PATH,
        *,
        durability: Durability = config.DEFAULT_DURABILITY,
        visibility_timeout: float = config.DEFAULT_VISIBILITY_TIMEOUT,
        max_attempts: int = config.DEFAULT_MAX_ATTEMPTS,
        max_payload_bytes: int = config.DEFAULT_MAX_PAYLOAD_BYTES,
        busy_timeout: float = config.DEFAULT_BUSY_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        poll_interval: float = config.DEFAULT_POLL_INTERVAL,
        dedup_window: float | timedelta = config.DEFAULT_DEDUP_WINDOW,
    ) -> None:
        if durability not in ("full", "normal"):
            raise InvalidArgument(f"durability must be 'full' or 'normal', not {durability!r}")
        self.default_visibility_timeout = validation.seconds(
            visibility_timeout, name="visibility_timeout",
            maximum=config.MAX_VISIBILITY_TIMEOUT, allow_zero=False)
        self.default_max_attempts = validation.integer(
            max_attempts, name="max_attempts", minimum=1, maximum=config.MAX_ATTEMPTS_LIMIT)
        self.max_payload_bytes = validation.integer(
            max_payload_bytes, name="max_payload_bytes", minimum=1, maximum=2**31)
        self.poll_interval = validation.seconds(
            poll_interval, name="poll_interval", maximum=10.0, allow_zero=False)
        self.dedup_window = validation.seconds(dedup_window, name="dedup_window",
                                               maximum=float("inf"))
        self.durability: Durability = durability
        self.retry_policy = retry_policy or RetryPolicy()
        self._clock = clock
        self._last_reap = float("-inf")
        self._reap_lock = threading.Lock()
        self._busy: set[str] = set()  # queues whose last claim found work
        self.backend: Backend = _open_backend(db, durability, busy_timeout)
        #: The database: the path or URL given, or for a backend instance what it describes.
        self.db: str | os.PathLike[str] = (
            db if not isinstance(db, Backend) else getattr(
                getattr(db, "dialect", None), "describe", lambda: repr(db))())

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close every database connection. The queue cannot be used afterwards."""
        self.backend.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Queue({mask_url(os.fspath(self.db))!r}, durability={self.durability!r})"

    def now(self) -> float:
        """The queue's clock reading (seconds since the epoch)."""
        return self._clock()

    @property
    def _defaults(self) -> tuple[int, float]:
        return self.default_max_attempts, self.default_visibility_timeout

    # -- producing --------------------------------------------------------------------------

    def _new_job(
        self,
        payload: JSON,
        *,
        priority: int,
        delay: float | timedelta,
        run_at: datetime | float | None,
        max_attempts: int | None,
        headers: Mapping[str, Any] | None,
        now: float,
    ) -> NewJob:
        payload_json = validation.payload(payload, max_bytes=self.max_payload_bytes)
        clean_headers, headers_json = validation.headers(headers)
        priority = validation.integer(priority, name="priority",
                                      minimum=config.PRIORITY_MIN, maximum=config.PRIORITY_MAX)
        wait = validation.seconds(delay, name="delay", maximum=config.MAX_DELAY)
        available_at = now + wait
        if run_at is not None:
            if wait:
                raise InvalidArgument("give either delay or run_at, not both")
            stamp = run_at.timestamp() if isinstance(run_at, datetime) else run_at
            validation.seconds(stamp, name="run_at", maximum=now + config.MAX_DELAY)
            available_at = max(now, float(stamp))
        if max_attempts is not None:
            validation.integer(max_attempts, name="max_attempts", minimum=1,
                               maximum=config.MAX_ATTEMPTS_LIMIT)
        return NewJob(payload=payload, payload_json=payload_json, headers=clean_headers,
                      headers_json=headers_json, priority=priority, available_at=available_at,
                      max_attempts=max_attempts)

    def enqueue(
        self,
        queue: str,
        payload: JSON,
        *,
        priority: int = 0,
        delay: float | timedelta = 0,
        run_at: datetime | float | None = None,
        max_attempts: int | None = None,
        headers: Mapping[str, Any] | None = None,
        depends_on: Iterable[JobRef] | None = None,
        dedup_key: str | None = None,
        dedup_window: float | timedelta | None = None,
        block: bool = False,
        timeout: float | timedelta | None = None,
    ) -> Job:
        """Store one job; it is durable when this returns.

        Args:
            queue: the queue's name; the queue is created with the defaults if new.
            payload: any JSON value (at most ``max_payload_bytes`` encoded).
            priority: higher runs first; FIFO within a priority.
            delay: seconds (or a timedelta) before the job may be claimed.
            run_at: a datetime or epoch seconds before which the job may not be claimed.
            max_attempts: overrides the queue's setting for this job.
            headers: a JSON object of string keys and scalar values that travels with the job.
            depends_on: jobs (or ids) that must all be acked first; until then the job is
                ``waiting``. If one is dead-lettered, so is this job ("dependency failed").
            dedup_key: while a job of this queue with the same key is unfinished (or done
                less than ``dedup_window`` seconds ago), return that job instead, with
                ``deduplicated=True``.
            dedup_window: overrides the queue object's ``dedup_window`` for this call.
            block: on a bounded queue that is full, wait for room instead of raising
                ``QueueFull`` (for at most ``timeout`` seconds; None waits indefinitely).
        """
        name = validation.queue_name(queue)
        now = self._clock()
        job = self._new_job(payload, priority=priority, delay=delay, run_at=run_at,
                            max_attempts=max_attempts, headers=headers, now=now)
        key = check_dedup_key(dedup_key)
        parents = check_dependencies(depends_on)
        if key is not None or parents:
            window = self.dedup_window if dedup_window is None else validation.seconds(
                dedup_window, name="dedup_window", maximum=float("inf"))
            job = dataclasses.replace(job, dedup_key=key, dedup_window=window,
                                      depends_on=parents)
        return self._store(name, [job], block=block, timeout=timeout)[0]

    def enqueue_many(
        self,
        queue: str,
        payloads: Iterable[JSON],
        *,
        priority: int = 0,
        delay: float | timedelta = 0,
        max_attempts: int | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> list[Job]:
        """Store many jobs in one transaction: all of them or, on any error, none."""
        name = validation.queue_name(queue)
        now = self._clock()
        payloads = list(payloads)
        if not payloads:
            return []
        if len(payloads) > config.MAX_BATCH:
            raise InvalidArgument(
                f"at most {config.MAX_BATCH} jobs per batch, not {len(payloads)}")
        # The arguments every job shares are checked once, with the first payload.
        first = self._new_job(payloads[0], priority=priority, delay=delay, run_at=None,
                              max_attempts=max_attempts, headers=headers, now=now)
        texts = [first.payload_json]
        texts += validation.payloads(payloads[1:], max_bytes=self.max_payload_bytes)
        return self.backend.enqueue_uniform(name, first, payloads, texts, now=now,
                                            queue_defaults=self._defaults)

    # -- consuming --------------------------------------------------------------------------

    def dequeue(
        self, queue: str, *, visibility_timeout: float | None = None, wait: float = 0
    ) -> Job | None:
        """Claim the next job, or return None if none is ready (after waiting ``wait`` s).

        The job is leased for ``visibility_timeout`` seconds (the queue's setting by default):
        ack, nack, requeue or extend it before then, or it becomes claimable again.
        """
        jobs = self.dequeue_many(queue, 1, visibility_timeout=visibility_timeout, wait=wait)
        return jobs[0] if jobs else None

    def dequeue_many(
        self,
        queue: str,
        count: int,
        *,
        visibility_timeout: float | None = None,
        wait: float = 0,
    ) -> list[Job]:
        """Claim up to ``count`` jobs in one statement, highest priority first."""
        name = validation.queue_name(queue)
        limit = validation.integer(count, name="count", minimum=1, maximum=config.MAX_BATCH)
        timeout = None
        if visibility_timeout is not None:
            timeout = validation.seconds(visibility_timeout, name="visibility_timeout",
                                         maximum=config.MAX_VISIBILITY_TIMEOUT, allow_zero=False)
        wait = validation.seconds(wait, name="wait", maximum=config.MAX_WAIT)
        deadline = time.monotonic() + wait
        while True:
            now = self._clock()
            self._maybe_reap(now)
            jobs: list[Job] = []
            # A read first: polling an empty queue must not queue up for the write lock. While
            # claims keep finding work the read is skipped (one statement per claim, not two).
            if name in self._busy or self.backend.has_claimable(name, now):
                jobs = self.backend.claim(name, limit=limit, visibility_timeout=timeout, now=now)
            if jobs:
                self._busy.add(name)
                return jobs
            self._busy.discard(name)
            if not self._wait_for_work(name, deadline):
                return []

    def _wait_for_work(self, queue: str, deadline: float) -> bool:
        """Sleep until a claim may succeed; False once the deadline has passed."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            now = self._clock()
            next_at = self.backend.next_available_at(queue)
            timeout = remaining
            if next_at is not None:
                # Something becomes due (a delayed job, an expiring lease): wake for it, but
                # never spin when it is already due yet unclaimable (a paused queue).
                timeout = min(remaining, max(next_at - now, 20 * self.poll_interval))
            changed = self.backend.wait_for_change(timeout, self.poll_interval, queue)
            if not changed or self.backend.has_claimable(queue, self._clock()):
                return True

    def _lease(self, job: JobRef, lease_token: str | None) -> tuple[int, str]:
        if lease_token is None and type(job) is Job:  # the common case, checked inline
            job_id, token = job.id, job.lease_token
            if type(job_id) is int and 0 < job_id < 2**63 and type(token) is str and token:
                return job_id, token
        if isinstance(job, Job):
            job_id, token = job.id, lease_token or job.lease_token
        else:
            job_id, token = job, lease_token
        validation.integer(job_id, name="job id", minimum=1, maximum=2**63 - 1)
        if not isinstance(token, str) or not token:
            raise InvalidArgument(f"job {job_id}: a lease token is required (claim it first)")
        return job_id, token

    def ack(self, job: JobRef, lease_token: str | None = None) -> None:
        """Mark a claimed job done. ``LeaseLost`` if the lease is no longer the caller's."""
        job_id, token = self._lease(job, lease_token)
        self.backend.ack(job_id, token, self._clock())

    acknowledge = ack

    def ack_many(self, jobs: Iterable[Job]) -> None:
        """Mark many claimed jobs done in one transaction: all of them or none.

        ``LeaseLost`` (naming the first job whose lease is not current) if any of them cannot
        be acked; then none is. ``InvalidArgument`` if a job appears twice.
        """
        leases = [self._lease(job, None) for job in jobs]
        if len(leases) > config.MAX_BATCH:
            raise InvalidArgument(f"at most {config.MAX_BATCH} jobs per batch, not {len(leases)}")
        ids = [job_id for job_id, _ in leases]
        if len(set(ids)) != len(ids):
            raise InvalidArgument("a job appears more than once in the batch")
        if leases:
            self.backend.ack_many(leases, self._clock())

    def nack(
        self,
        job: JobRef,
        error: str | None = None,
        *,
        delay: float | timedelta | None = None,
        lease_token: str | None = None,
    ) -> Job | DeadLetter:
        """Record a failed attempt.

        The job returns to the queue after ``delay`` seconds (by default the retry policy's
        exponential backoff with jitter), or moves to the dead-letter table when its attempts
        are used up. Returns the job as it now stands.
        """
        job_id, token = self._lease(job, lease_token)
        wait = None
        if delay is not None:
            wait = validation.seconds(delay, name="delay", maximum=config.MAX_DELAY)
        message = validation.text(error, name="error", max_chars=config.MAX_ERROR_CHARS)
        return self.backend.nack(job_id, token, error=message, delay=wait,
                                 backoff=self.retry_policy.delay, now=self._clock())

    def requeue(
        self, job: JobRef, delay: float | timedelta = 0, *, lease_token: str | None = None
    ) -> Job:
        """Give a claimed job back without counting the attempt (e.g. on shutdown)."""
        job_id, token = self._lease(job, lease_token)
        wait = validation.seconds(delay, name="delay", maximum=config.MAX_DELAY)
        return self.backend.requeue(job_id, token, delay=wait, now=self._clock())

    def extend(
        self,
        job: JobRef,
        seconds: float | timedelta | None = None,
        *,
        lease_token: str | None = None,
    ) -> Job:
        """Heartbeat: the lease now ends ``seconds`` from now (default: the queue's timeout)."""
        job_id, token = self._lease(job, lease_token)
        if seconds is None:
            queue = job.queue if isinstance(job, Job) else self.backend.get_job(job_id).queue
            info = self.backend.get_queue(queue)
            seconds = info.visibility_timeout if info else self.default_visibility_timeout
        length = validation.seconds(seconds, name="seconds",
                                    maximum=config.MAX_VISIBILITY_TIMEOUT, allow_zero=False)
        return self.backend.extend(job_id, token, seconds=length, now=self._clock())

    def move_to_dead_letter_queue(
        self,
        job: JobRef,
        reason: str = "moved to the dead-letter table",
        *,
        error: str | None = None,
        lease_token: str | None = None,
    ) -> DeadLetter:
        """Dead-letter a job now.

        A consumer passes the claimed ``Job`` (its lease is checked); an operator may pass an
        id to dead-letter a job that is not leased.
        """
        if isinstance(job, Job):
            job_id, token = job.id, lease_token or job.lease_token
        else:
            job_id, token = job, lease_token
        validation.integer(job_id, name="job id", minimum=1, maximum=2**63 - 1)
        why = validation.text(reason, name="reason", max_chars=1024) or "dead-lettered"
        message = validation.text(error, name="error", max_chars=config.MAX_ERROR_CHARS)
        return self.backend.dead_letter(job_id, token, reason=why, error=message,
                                        now=self._clock())

    def reap(self) -> int:
        """Dead-letter now every job whose lease expired on its last attempt."""
        now = self._clock()
        with self._reap_lock:
            self._last_reap = now
        return self.backend.reap_expired(now)

    def _maybe_reap(self, now: float) -> None:
        # Throttled by the queue's own clock (leases expire by it too); a clock that steps
        # backwards does not stop reaping.
        if 0 <= now - self._last_reap < config.REAP_INTERVAL:
            return
        if not self._reap_lock.acquire(blocking=False):
            return
        try:
            self._last_reap = now
            reaped = self.backend.reap_expired(now)
            if reaped:
                logger.warning("dead-lettered %d job(s) whose last lease expired", reaped,
                               extra={"reaped": reaped})
        finally:
            self._reap_lock.release()

    # -- dead letters -----------------------------------------------------------------------

    def dead_letters(
        self, queue: str | None = None, *, limit: int = 100, offset: int = 0
    ) -> list[DeadLetter]:
        """Dead-lettered jobs (of one queue or all), newest first."""
        name = None if queue is None else validation.queue_name(queue)
        limit, offset = self._paging(limit, offset)
        self.reap()
        return self.backend.dead_letters(name, limit=limit, offset=offset)

    def redrive(self, target: int | str) -> list[int]:
        """Move dead letters back to their queue with attempts reset to 0.

        ``target`` is a job id (one job) or a queue name (all of that queue's dead letters).
        Returns the ids moved.
        """
        now = self._clock()
        if isinstance(target, str):
            name = validation.queue_name(target)
            return self.backend.redrive(None, name, now=now, queue_defaults=self._defaults)
        job_id = validation.integer(target, name="job id", minimum=1, maximum=2**63 - 1)
        return self.backend.redrive(job_id, None, now=now, queue_defaults=self._defaults)

    def purge_dead_letters(
        self, queue: str | None = None, *, older_than: float | timedelta = 0
    ) -> int:
        """Delete dead letters (of one queue or all) that died ``older_than`` or more ago."""
        name = None if queue is None else validation.queue_name(queue)
        age = validation.seconds(older_than, name="older_than", maximum=float("inf"))
        return self.backend.purge_dead_letters(name, before=self._clock() - age)

    # -- reading ----------------------------------------------------------------------------

    def get_job(self, job_id: int) -> Job:
        """A job by id, wherever it is; ``JobNotFound`` if none has that id."""
        job_id = validation.integer(job_id, name="job id", minimum=1, maximum=2**63 - 1)
        return self.backend.get_job(job_id)

    def list_jobs(
        self,
        queue: str | None = None,
        *,
        state: JobState | str | None = None,
        headers: Mapping[str, Any] | None = None,
        limit: int = 50,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[Job]:
        """Jobs filtered by queue, state and header values, with paging.

        Dead-lettered jobs are listed by :meth:`dead_letters`.
        """
        name = None if queue is None else validation.queue_name(queue)
        wanted: JobState | None = None
        if state is not None:
            try:
                wanted = JobState(state)
            except ValueError:
                raise InvalidArgument(
                    f"unknown state {state!r}; use one of {[s.value for s in JobState]}"
                ) from None
        filters, _ = validation.headers(headers)
        limit, offset = self._paging(limit, offset)
        if wanted is JobState.DEAD:
            return [self.backend.get_job(d.id)
                    for d in self.backend.dead_letters(name, limit=limit, offset=offset)]
        return self.backend.list_jobs(name, state=wanted, headers=filters, limit=limit,
                                      offset=offset, newest_first=newest_first)

    def history(self, job_id: int) -> list[JobEvent]:
        """A job's failures, expired leases, dead-letterings and redrives, oldest first."""
        job_id = validation.integer(job_id, name="job id", minimum=1, maximum=2**63 - 1)
        return self.backend.history(job_id)

    @staticmethod
    def _paging(limit: int, offset: int) -> tuple[int, int]:
        return (validation.integer(limit, name="limit", minimum=1, maximum=config.MAX_BATCH),
                validation.integer(offset, name="offset", minimum=0, maximum=2**62))

    @overload
    def stats(self) -> dict[str, QueueStats]: ...
    @overload
    def stats(self, queue: str) -> QueueStats: ...

    def stats(self, queue: str | None = None) -> dict[str, QueueStats] | QueueStats:
        """Counts by state: for every queue (a dict by name) or for one queue."""
        name = None if queue is None else validation.queue_name(queue)
        self._maybe_reap(self._clock())
        everything = self.backend.stats(self._clock())
        if name is None:
            return everything
        if name not in everything:
            raise QueueNotFound(f"no queue named {name!r}")
        return everything[name]

    # -- queues -----------------------------------------------------------------------------

    def create_queue(
        self,
        name: str,
        *,
        max_attempts: int | None = None,
        visibility_timeout: float | None = None,
        max_size: int | None = None,
        exist_ok: bool = False,
    ) -> QueueInfo:
        """Create a queue with its own settings (``QueueAlreadyExists`` unless ``exist_ok``)."""
        name = validation.queue_name(name)
        attempts = self.default_max_attempts if max_attempts is None else validation.integer(
            max_attempts, name="max_attempts", minimum=1, maximum=config.MAX_ATTEMPTS_LIMIT)
        timeout = (self.default_visibility_timeout if visibility_timeout is None else
                   validation.seconds(visibility_timeout, name="visibility_timeout",
                                      maximum=config.MAX_VISIBILITY_TIMEOUT, allow_zero=False))
        size = None if max_size is None else validation.integer(
            max_size, name="max_size", minimum=1, maximum=2**62)
        return self.backend.create_queue(name, max_attempts=attempts, visibility_timeout=timeout,
                                         max_size=size, exist_ok=exist_ok, now=self._clock())

    def update_queue(
        self,
        name: str,
        *,
        max_attempts: int = _UNCHANGED,
        visibility_timeout: float = _UNCHANGED,
        max_size: int | None = _UNCHANGED,
    ) -> QueueInfo:
        """Change a queue's settings; ``max_size=None`` removes the bound.

        ``max_attempts`` applies at once to the queue's jobs that did not set their own.
        """
        name = validation.queue_name(name)
        changes: dict[str, Any] = {}
        if max_attempts is not _UNCHANGED:
            changes["max_attempts"] = validation.integer(
                max_attempts, name="max_attempts", minimum=1, maximum=config.MAX_ATTEMPTS_LIMIT)
        if visibility_timeout is not _UNCHANGED:
            changes["visibility_timeout"] = validation.seconds(
                visibility_timeout, name="visibility_timeout",
                maximum=config.MAX_VISIBILITY_TIMEOUT, allow_zero=False)
        if max_size is not _UNCHANGED:
            changes["max_size"] = None if max_size is None else validation.integer(
                max_size, name="max_size", minimum=1, maximum=2**62)
        return self.backend.update_queue(name, changes, self._clock())

    def get_queue(self, name: str) -> QueueInfo:
        """A queue's settings; ``QueueNotFound`` if there is none."""
        info = self.backend.get_queue(validation.queue_name(name))
        if info is None:
            raise QueueNotFound(f"no queue named {name!r}")
        return info

    def list_queues(self) -> list[QueueInfo]:
        """Every queue, by name."""
        return self.backend.list_queues()

    def delete_queue(self, name: str, *, force: bool = False) -> DeletedQueue:
        """Delete a queue with its done jobs, dead letters, history, schedules and subscriptions.

        The schedules that target the queue and its topic subscriptions go with it, in the
        same transaction: otherwise a schedule's next tick or a publish to the topic would
        recreate it (an enqueue creates a missing queue). The result names them. Refuses
        (``QueueNotEmpty``, nothing deleted) while it holds unfinished jobs, unless ``force``;
        ``QueueNotFound`` if there is no such queue.
        """
        return self.backend.delete_queue(validation.queue_name(name), force=force)

    def pause(self, name: str) -> QueueInfo:
        """Stop consumers from claiming from this queue; producers may still enqueue."""
        return self.backend.update_queue(validation.queue_name(name), {"paused": 1}, self._clock())

    def resume(self, name: str) -> QueueInfo:
        """Let consumers claim from a paused queue again."""
        return self.backend.update_queue(validation.queue_name(name), {"paused": 0}, self._clock())

    def purge(self, name: str) -> int:
        """Delete every unfinished job of a queue (leases held on them are lost)."""
        name = validation.queue_name(name)
        self.get_queue(name)
        return self.backend.purge_queue(name)

    # -- housekeeping -----------------------------------------------------------------------

    def cleanup(
        self,
        older_than: float | timedelta = timedelta(days=7),
        *,
        queue: str | None = None,
        vacuum: bool = False,
        batch: int = 1000,
    ) -> int:
        """Delete done jobs finished ``older_than`` or more ago; returns how many.

        Works in short transactions of ``batch`` rows so consumers are never held up. With
        ``vacuum=True`` the freed pages are returned to the file system afterwards.
        """
        age = validation.seconds(older_than, name="older_than", maximum=float("inf"))
        name = None if queue is None else validation.queue_name(queue)
        size = validation.integer(batch, name="batch", minimum=1, maximum=100_000)
        return self.backend.cleanup(before=self._clock() - age, queue=name, batch=size,
                                    vacuum=vacuum)

    # -- processes --------------------------------------------------------------------------

    def register_worker(self, worker_id: str, *, kind: str, queues: Iterable[str] = (),
                        host: str | None = None, pid: int | None = None) -> None:
        """Record a producer/consumer process as running (shown by ``workers()``)."""
        import socket

        names = [validation.queue_name(name) for name in queues]
        self.backend.register_worker(worker_id, kind=kind, host=host or socket.gethostname(),
                                     pid=os.getpid() if pid is None else pid, queues=names,
                                     now=self._clock())

    def heartbeat_worker(self, worker_id: str, *, processed: int = 0, failed: int = 0) -> None:
        """Record that a process is alive, adding to its processed/failed counters."""
        self.backend.heartbeat_worker(worker_id, processed=processed, failed=failed,
                                      now=self._clock())

    def stop_worker(self, worker_id: str) -> None:
        """Record that a process exited cleanly."""
        self.backend.stop_worker(worker_id, self._clock())

    def workers(self, *, stale_after: float = config.WORKER_STALE_AFTER) -> list[WorkerInfo]:
        """Registered processes; running ones silent for ``stale_after`` s are marked dead."""
        return self.backend.workers(stale_before=self._clock() - stale_after)

    def get_value(self, key: str) -> str | None:
        """A small durable value (e.g. a producer's file offset), or None."""
        return self.backend.kv_get(key)

    def set_value(self, key: str, value: str) -> None:
        """Store a small durable value."""
        self.backend.kv_set(key, value, self._clock())

    def compare_and_set_value(self, key: str, expected: str | None, value: str) -> bool:
        """Store ``value`` only if the stored value is still ``expected`` (None: the key has
        no value yet); True if stored, False (nothing changed) if another writer got there
        first.

        Inside ``atomic()`` the check and the write belong to the block's transaction, so
        ``with q.atomic(): ok = q.compare_and_set_value("offset", "41", "42")`` followed by
        writes that raise unless ``ok`` stores them only on top of the value this process
        last saw. A concurrent block writing the same key is waited for, then compared
        against: of two processes expecting the same value, exactly one succeeds.
        """
        return self.backend.kv_compare_and_set(key, expected, value, self._clock())

    def throughput(
        self, *, window: float | timedelta = 3600, bucket: float | timedelta = 60
    ) -> list[ThroughputPoint]:
        """Enqueued/acked/failed/dead counts per queue per ``bucket`` over the last ``window``.

        Computed from the jobs themselves, so it covers done jobs until ``cleanup`` removes them.
        """
        span = validation.seconds(window, name="window", maximum=config.MAX_DELAY)
        step = validation.seconds(bucket, name="bucket", maximum=span or 1.0, allow_zero=False)
        return self.backend.throughput(since=self._clock() - span, bucket=step)

    def atomic(self) -> AbstractContextManager[None]:
        """Make this thread's writes inside the block one transaction: all of them or none.

        ``with q.atomic(): q.enqueue_many("q", lines); q.set_value("offset", "42")`` stores
        the jobs and the offset together. Only writes belong inside (never a waiting
        ``dequeue``), and blocks do not nest.
        """
        return self.backend.atomic()

    def schema_version(self) -> int:
        """The database's schema version (``PRAGMA user_version``)."""
        return self.backend.schema_version()

    def check_integrity(self) -> list[str]:
        """Problems found by a structural check of the database; empty when it is sound.

        Reads every page (SQLite's ``quick_check``), so it takes time on a large database.
        """
        return self.backend.quick_check()

