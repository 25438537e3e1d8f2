"""Administration methods of :class:`~persistent_queue.Queue`: queues, jobs, dead letters.

A mixin of ``Queue``: creating, changing, pausing, purging and deleting queues; an operator's
actions on one job (cancel, delete, retry now); listing, editing, redriving and purging dead
letters; deleting old done and cancelled jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from . import config, flow, validation
from .errors import InvalidArgument, QueueNotFound
from .models import JSON, DeadLetter, DeletedQueue, Job, QueueInfo
from .queue_base import QueueBase

_UNCHANGED: Any = object()


def _limits(**given: Any) -> dict[str, Any]:
    """Flow-control settings, checked, as the queue's columns (None removes a limit)."""
    columns: dict[str, Any] = {}
    for name in ("concurrency", "group_concurrency"):
        if name in given:
            columns[name] = flow.limit(given[name], name=name)
    for name, prefix in (("rate_limit", "rate"), ("group_rate_limit", "group_rate")):
        if name in given:
            rate = flow.rate(given[name], name=name)
            columns[f"{prefix}_count"] = None if rate is None else rate.count
            columns[f"{prefix}_period"] = None if rate is None else rate.period
    return columns


def _alerts(**given: Any) -> dict[str, Any]:
    """Alert thresholds, checked, as the queue's columns (None removes an alert)."""
    columns: dict[str, Any] = {}
    for name in ("alert_depth", "alert_dead_letters"):
        if given.get(name) is not None:
            columns[name] = validation.integer(given[name], name=name, minimum=1,
                                               maximum=2**62)
    if given.get("alert_oldest_age") is not None:
        columns["alert_oldest_age"] = validation.seconds(
            given["alert_oldest_age"], name="alert_oldest_age", maximum=config.MAX_DELAY,
            allow_zero=False)
    if given.get("alert_failure_rate") is not None:
        rate = validation.fraction(given["alert_failure_rate"], name="alert_failure_rate")
        if rate == 0:
            raise InvalidArgument("alert_failure_rate must be above 0 (and at most 1), not 0")
        columns["alert_failure_rate"] = rate
    return {name: columns.get(name) for name in given}


class AdministrationMixin(QueueBase):
    """Queue settings and lifecycle, dead letters and cleanup for ``Queue``."""

    # -- queues -----------------------------------------------------------------------------

    def create_queue(
        self,
        name: str,
        *,
        max_attempts: int | None = None,
        visibility_timeout: float | None = None,
        max_size: int | None = None,
        exist_ok: bool = False,
        timeout: float | timedelta | None = None,
        concurrency: int | None = None,
        rate_limit: str | None = None,
        group_concurrency: int | None = None,
        group_rate_limit: str | None = None,
        alert_depth: int | None = None,
        alert_oldest_age: float | timedelta | None = None,
        alert_failure_rate: float | None = None,
        alert_dead_letters: int | None = None,
    ) -> QueueInfo:
        """Create a queue with its own settings (``QueueAlreadyExists`` unless ``exist_ok``;
        an existing queue keeps its settings).

        ``timeout``: seconds an attempt of its jobs may run before its worker stops it and the
        attempt fails, unless the job sets its own (default: no limit).

        Flow control (``docs/flow-control.md``), enforced across every consumer of the
        database: ``concurrency`` (leased jobs of the queue at once), ``rate_limit`` (claims
        per period: ``"50/s"``, ``"100/m"``, ``"1000/h"``, ``"3/10s"``; a burst of the count,
        then evenly spaced), and per ``group_key``: ``group_concurrency`` (1: one job of a
        group at a time, in enqueue order) and ``group_rate_limit``.

        Alerts (:meth:`alerts`, ``/metrics``), each firing when its value reaches its
        threshold: ``alert_depth`` (jobs ready now, >= 1), ``alert_oldest_age`` (seconds the
        oldest ready job has waited, > 0), ``alert_failure_rate`` (above 0, at most 1: the
        failed share of the attempts ended in the last ``config.ALERT_FAILURE_WINDOW``
        seconds), ``alert_dead_letters`` (jobs in the dead-letter table, >= 1). A bad
        threshold is ``InvalidArgument``.
        """
        name = validation.queue_name(name)
        limits = _limits(concurrency=concurrency, rate_limit=rate_limit,
                         group_concurrency=group_concurrency, group_rate_limit=group_rate_limit)
        limits.update(_alerts(alert_depth=alert_depth, alert_oldest_age=alert_oldest_age,
                              alert_failure_rate=alert_failure_rate,
                              alert_dead_letters=alert_dead_letters))
        attempts = self.default_max_attempts if max_attempts is None else validation.integer(
            max_attempts, name="max_attempts", minimum=1, maximum=config.MAX_ATTEMPTS_LIMIT)
        lease = (self.default_visibility_timeout if visibility_timeout is None else
                 validation.seconds(visibility_timeout, name="visibility_timeout",
                                    maximum=config.MAX_VISIBILITY_TIMEOUT, allow_zero=False))
        run_limit = validation.run_timeout(timeout)
        size = None if max_size is None else validation.integer(
            max_size, name="max_size", minimum=1, maximum=config.MAX_QUEUE_SIZE)
        return self.backend.create_queue(name, max_attempts=attempts, visibility_timeout=lease,
                                         max_size=size, exist_ok=exist_ok, now=self._clock(),
                                         timeout=run_limit,
                                         limits={k: v for k, v in limits.items()
                                                 if v is not None} or None)

    def update_queue(
        self,
        name: str,
        *,
        max_attempts: int = _UNCHANGED,
        visibility_timeout: float = _UNCHANGED,
        max_size: int | None = _UNCHANGED,
        timeout: float | timedelta | None = _UNCHANGED,
        concurrency: int | None = _UNCHANGED,
        rate_limit: str | None = _UNCHANGED,
        group_concurrency: int | None = _UNCHANGED,
        group_rate_limit: str | None = _UNCHANGED,
        alert_depth: int | None = _UNCHANGED,
        alert_oldest_age: float | timedelta | None = _UNCHANGED,
        alert_failure_rate: float | None = _UNCHANGED,
        alert_dead_letters: int | None = _UNCHANGED,
    ) -> QueueInfo:
        """Change a queue's settings; ``max_size=None`` removes the bound,
        ``timeout=None`` the run-time limit, None a flow-control limit (``concurrency``,
        ``rate_limit``, ``group_concurrency``, ``group_rate_limit``) and None an alert
        (``alert_depth``, ``alert_oldest_age``, ``alert_failure_rate``,
        ``alert_dead_letters``): see :meth:`create_queue`.

        ``max_attempts`` and ``timeout`` apply at once to the queue's jobs that did not set
        their own (a running attempt keeps the limit it was claimed with). A new flow-control
        limit applies from the next claim (jobs already leased keep their leases); a changed
        rate limit starts afresh. A queue that gains group limits puts its unfinished jobs
        without a group key into one group of their own, held back by no group limit.
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
                max_size, name="max_size", minimum=1, maximum=config.MAX_QUEUE_SIZE)
        if timeout is not _UNCHANGED:
            changes["timeout"] = validation.run_timeout(timeout)
        given = {key: value for key, value in (
            ("concurrency", concurrency), ("rate_limit", rate_limit),
            ("group_concurrency", group_concurrency), ("group_rate_limit", group_rate_limit),
        ) if value is not _UNCHANGED}
        changes.update(_limits(**given))
        changes.update(_alerts(**{key: value for key, value in (
            ("alert_depth", alert_depth), ("alert_oldest_age", alert_oldest_age),
            ("alert_failure_rate", alert_failure_rate), ("alert_dead_letters", alert_dead_letters),
        ) if value is not _UNCHANGED}))
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
        """Delete done and cancelled jobs finished ``older_than`` or more ago; returns how
        many.

        Works in short transactions of ``batch`` rows so consumers are never held up. With
        ``vacuum=True`` the freed pages are returned to the file system afterwards. Done
        jobs holding a task result finished more than ``result_ttl`` ago (the Queue's) go
        too, however young.
        """
        age = validation.seconds(older_than, name="older_than", maximum=float("inf"))
        name = None if queue is None else validation.queue_name(queue)
        size = validation.integer(batch, name="batch", minimum=1, maximum=100_000)
        now = self._clock()
        return self.backend.cleanup(before=now - age, queue=name, batch=size,
                                    results_before=now - self.result_ttl,
                                    vacuum=vacuum)

    # -- one job ----------------------------------------------------------------------------

    def cancel(self, job_id: int, *, reason: str | None = None) -> Job:
        """Cancel a job; returns it as it now stands.

        A waiting or ready job (delayed and backing-off ones too) is ``cancelled`` at once
        and never runs. A running job (leased, its lease live) stays leased with
        ``cancel_requested`` set: its worker stops it and confirms (``confirm_cancel``), or
        the job is cancelled when its lease expires; an ack that comes first still acks it
        (the work is done). Asking again changes nothing. A job whose lease already expired
        is cancelled at once (its consumer's late ack is refused). The jobs waiting for a
        cancelled job are dead-lettered with reason "dependency cancelled" (redrivable).
        ``InvalidJobState`` for a done, cancelled or dead-lettered job, ``JobNotFound`` for
        an unknown id.
        """
        job_id = validation.integer(job_id, name="job id", minimum=1, maximum=2**63 - 1)
        why = validation.text(reason, name="reason", max_chars=config.MAX_REASON_CHARS)
        return self.backend.cancel(job_id, reason=why, now=self._clock())

    def delete_job(self, job_id: int) -> None:
        """Delete a waiting, ready (delayed too), done or cancelled job with its history.

        The jobs waiting for a deleted unfinished job are dead-lettered with reason
        "dependency deleted". ``InvalidJobState`` for a leased job (cancel it first) or a
        dead letter (purge it), ``JobNotFound`` for an unknown id.
        """
        job_id = validation.integer(job_id, name="job id", minimum=1, maximum=2**63 - 1)
        self.backend.delete_job(job_id, now=self._clock())

    def retry_now(self, job_id: int) -> Job:
        """Make a delayed or backing-off ready job claimable now (waiting consumers wake).

        ``InvalidJobState`` (saying why) for a job in any other state or already claimable,
        ``JobNotFound`` for an unknown id.
        """
        job_id = validation.integer(job_id, name="job id", minimum=1, maximum=2**63 - 1)
        return self.backend.retry_now(job_id, now=self._clock())

    # -- dead letters -----------------------------------------------------------------------

    def edit_dead_letter(
        self,
        job_id: int,
        *,
        payload: JSON = _UNCHANGED,
        headers: Mapping[str, Any] | None = _UNCHANGED,
        priority: int = _UNCHANGED,
    ) -> DeadLetter:
        """Change a dead letter before redriving it; what is not given stays as it is.

        ``payload`` and ``headers`` are checked exactly as ``enqueue`` checks them (the same
        size limits and errors); ``headers=None`` removes them. ``InvalidJobState`` if the
        job is not dead-lettered, ``JobNotFound`` for an unknown id.
        """
        job_id = validation.integer(job_id, name="job id", minimum=1, maximum=2**63 - 1)
        changes: dict[str, Any] = {}
        if payload is not _UNCHANGED:
            changes["payload"] = validation.payload(payload, max_bytes=self.max_payload_bytes)
        if headers is not _UNCHANGED:
            changes["headers"] = validation.headers(headers)[1]
        if priority is not _UNCHANGED:
            changes["priority"] = validation.integer(
                priority, name="priority", minimum=config.PRIORITY_MIN,
                maximum=config.PRIORITY_MAX)
        return self.backend.edit_dead_letter(job_id, changes)

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
