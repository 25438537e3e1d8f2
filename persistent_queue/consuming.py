"""Consuming methods of :class:`~persistent_queue.Queue`: claims and the lease.

A mixin of ``Queue``: ``dequeue`` waits for work (a commit, an announcement, a job coming
due) and claims it under a lease; ``ack``, ``nack``, ``requeue``, ``extend``,
``set_progress``, ``confirm_cancel`` and ``move_to_dead_letter_queue`` end or renew that
lease. The backend does each in one transaction and checks the lease token.
``cancel_requests`` tells a worker which of its jobs an operator asked to cancel.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

from . import config, validation
from .errors import InvalidArgument
from .models import DeadLetter, Job
from .queue_base import JobRef, QueueBase
from .storage.external import joined
from .tasks import NO_RESULT, encode_result


class ConsumingMixin(QueueBase):
    """Claiming jobs and acking, failing, returning or extending their leases for ``Queue``."""

    def dequeue(
        self, queue: str, *, visibility_timeout: float | None = None, wait: float = 0,
        worker: str | None = None,
    ) -> Job | None:
        """Claim the next job, or return None if none is ready (after waiting ``wait`` s).

        The job is leased for ``visibility_timeout`` seconds (the queue's setting by default):
        ack, nack, requeue or extend it before then, or it becomes claimable again. The claim
        records ``worker`` (default :attr:`default_worker`, ``"pid@host"``) as the job's
        ``claimed_by`` and now as its ``started_at``; the job carries its ``timeout``.
        """
        jobs = self.dequeue_many(queue, 1, visibility_timeout=visibility_timeout, wait=wait,
                                 worker=worker)
        return jobs[0] if jobs else None

    def dequeue_many(
        self,
        queue: str,
        count: int,
        *,
        visibility_timeout: float | None = None,
        wait: float = 0,
        worker: str | None = None,
    ) -> list[Job]:
        """Claim up to ``count`` jobs in one statement, highest priority first (see
        :meth:`dequeue`)."""
        name = validation.queue_name(queue)
        limit = validation.integer(count, name="count", minimum=1, maximum=config.MAX_BATCH)
        claimer = self.default_worker if worker is None else validation.worker_id(worker)
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
                jobs = self.backend.claim(name, limit=limit, visibility_timeout=timeout, now=now,
                                          worker=claimer)
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
            outlook = self.backend.flow_outlook(queue, now)
            if outlook is not None:  # a queue with limits: wait for them, never claim in vain
                claimable, wake_at = outlook
                if claimable:
                    return True
                timeout = remaining if wake_at is None else max(wake_at - now, 0.001)
                # Woken by a commit (SQLite) or an announcement for the queue (an ack by a
                # process that claims from limited queues, a nack, a new job); looks again
                # at least every FLOW_RECHECK s for acks that were not announced.
                self.backend.wait_for_change(min(timeout, remaining, config.FLOW_RECHECK),
                                             self.poll_interval, queue)
                self._maybe_reap(self._clock())  # an expired last lease may hold a group
                continue
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

    def ack(self, job: JobRef, lease_token: str | None = None, *,
            result: Any = NO_RESULT, connection: Any = None) -> None:
        """Mark a claimed job done. ``LeaseLost`` if the lease is no longer the caller's.

        ``result`` (a task's return value, any JSON value) is stored with the ack, in its
        transaction; ``InvalidPayload``/``PayloadTooLarge`` (over ``config.MAX_RESULT_BYTES``)
        before anything is written, the job still leased.

        ``connection`` (the caller's own connection to the queue's database, in a
        transaction; see :meth:`enqueue`) makes the ack part of the caller's transaction: the
        handler's database writes and the ack commit together or not at all. The lease is
        checked there as always: ``LeaseLost`` (nothing written; roll back your transaction,
        whose writes another consumer will make again) if it is no longer the caller's.
        """
        job_id, token = self._lease(job, lease_token)
        result_json = None if result is NO_RESULT else encode_result(result)
        if connection is None:
            self.backend.ack(job_id, token, self._clock(), result_json)
            return
        with joined(self.backend, connection):
            self.backend.ack(job_id, token, self._clock(), result_json)

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
        dead_letter_reason: str | None = None,
        connection: Any = None,
    ) -> Job | DeadLetter:
        """Record a failed attempt.

        The job returns to the queue after ``delay`` seconds (by default the retry policy's
        exponential backoff with jitter), or moves to the dead-letter table when its attempts
        are used up, with ``dead_letter_reason`` as the dead letter's reason if given (else
        "failed N of M attempts"). A job whose cancellation was requested is cancelled
        instead (never run again). Returns the job as it now stands. ``connection``: written
        in the caller's transaction, as for :meth:`ack`.
        """
        job_id, token = self._lease(job, lease_token)
        wait = None
        if delay is not None:
            wait = validation.seconds(delay, name="delay", maximum=config.MAX_DELAY)
        message = validation.text(error, name="error", max_chars=config.MAX_ERROR_CHARS)
        reason = validation.text(dead_letter_reason, name="dead_letter_reason", max_chars=1024)
        with joined(self.backend, connection) if connection is not None else nullcontext():
            return self.backend.nack(job_id, token, error=message, delay=wait,
                                     backoff=self.retry_policy.delay, now=self._clock(),
                                     dead_letter_reason=reason)

    def requeue(
        self, job: JobRef, delay: float | timedelta = 0, *, lease_token: str | None = None
    ) -> Job:
        """Give a claimed job back without counting the attempt (e.g. on shutdown).

        A job whose cancellation was requested is cancelled instead.
        """
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

    def set_progress(
        self,
        job: Job,
        fraction: float,
        message: str | None = None,
        *,
        visibility_timeout: float | timedelta | None = None,
    ) -> Job:
        """Store how far a claimed job has come, and renew its lease (fenced like ``extend``).

        ``fraction`` is from 0 to 1 (``InvalidArgument`` otherwise); ``message`` is free
        text, truncated to ``config.MAX_PROGRESS_MESSAGE_CHARS``. The lease then ends no
        sooner than ``visibility_timeout`` (default: the queue's) from now; it is never
        shortened. ``LeaseLost`` if the lease is no longer the caller's. The returned job's
        ``cancel_requested`` says whether an operator asked to cancel it.
        """
        job_id, token = self._lease(job, None)
        value = validation.fraction(fraction)
        words = validation.text(message, name="message",
                                max_chars=config.MAX_PROGRESS_MESSAGE_CHARS)
        seconds = None
        if visibility_timeout is not None:
            seconds = validation.seconds(visibility_timeout, name="visibility_timeout",
                                         maximum=config.MAX_VISIBILITY_TIMEOUT,
                                         allow_zero=False)
        return self.backend.set_progress(job_id, token, fraction=value, message=words,
                                         seconds=seconds, now=self._clock())

    def confirm_cancel(self, job: Job) -> Job:
        """Say that the claimed job was stopped after its cancellation was requested: it is
        ``cancelled`` (with the worker and run time of the attempt in its history), and the
        jobs waiting for it are dead-lettered ("dependency cancelled").

        ``LeaseLost`` if the lease is no longer the caller's (a lease that expired after the
        request is cancelled by the reaper); ``InvalidJobState`` if no cancellation was
        requested.
        """
        job_id, token = self._lease(job, None)
        return self.backend.confirm_cancel(job_id, token, now=self._clock())

    def cancel_requests(self, job_ids: Iterable[int]) -> set[int]:
        """Which of ``job_ids`` an operator asked to cancel (``cancel``): a cheap read of the
        jobs by id that takes no write lock (a worker asks for the jobs it runs, about twice
        a second). A job cancelled since (or whose cancellation was requested) is included."""
        if isinstance(job_ids, str | bytes | Mapping) or not isinstance(job_ids, Iterable):
            raise InvalidArgument("job_ids must be a list of job ids")
        ids = [validation.integer(job_id, name="job id", minimum=1, maximum=2**63 - 1)
               for job_id in job_ids]
        if len(ids) > config.MAX_BATCH:
            raise InvalidArgument(f"at most {config.MAX_BATCH} job ids, not {len(ids)}")
        return self.backend.cancel_requests(ids) if ids else set()

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
