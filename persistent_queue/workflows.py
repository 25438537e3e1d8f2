"""Workflow methods of :class:`~persistent_queue.Queue`: topics and schedules.

A mixin of ``Queue``: it validates arguments and reads the clock, the backend does each step
in one transaction. Dependencies, dedup keys and waiting for room in a bounded queue are
options of ``Queue.enqueue`` itself (``producing.py``); their checks are here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from . import config, schedules, tracing, validation
from .errors import InvalidArgument, QueueFull, ScheduleNotFound, StorageError
from .models import JSON, Job, ScheduleInfo, Subscription
from .queue_base import QueueBase

logger = logging.getLogger(__name__)


def check_dedup_key(value: object) -> str | None:
    """A valid dedup key (1-256 characters) or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > config.MAX_DEDUP_KEY_CHARS:
        raise InvalidArgument(
            f"dedup_key must be a string of 1-{config.MAX_DEDUP_KEY_CHARS} characters"
        )
    return value


def check_dependencies(value: object) -> tuple[int, ...]:
    """Validated, de-duplicated job ids to wait for (order kept)."""
    if value is None:
        return ()
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidArgument("depends_on must be a list of job ids")
    ids: list[int] = []
    for item in value:
        job_id = item.id if isinstance(item, Job) else item
        validation.integer(job_id, name="depends_on id", minimum=1, maximum=2**63 - 1)
        if job_id not in ids:
            ids.append(job_id)
    if len(ids) > config.MAX_DEPENDENCIES:
        raise InvalidArgument(f"a job may depend on at most {config.MAX_DEPENDENCIES} jobs")
    return tuple(ids)


class WorkflowMixin(QueueBase):
    """Topics and schedules for ``Queue``."""

    # -- topics -----------------------------------------------------------------------------

    def subscribe(self, topic: str, *, queue: str) -> bool:
        """Deliver a copy of every job published to ``topic`` into ``queue``.

        Returns False if the queue was already subscribed (subscribing is idempotent).
        """
        name = validation.queue_name(topic, what="topic")
        target = validation.queue_name(queue)
        return self.backend.subscribe(name, target, self._clock())

    def unsubscribe(self, topic: str, *, queue: str) -> bool:
        """Stop delivering ``topic`` into ``queue``; False if it was not subscribed."""
        return self.backend.unsubscribe(validation.queue_name(topic, what="topic"),
                                        validation.queue_name(queue))

    def subscriptions(self, topic: str | None = None) -> list[Subscription]:
        """Subscriptions of one topic or of all, by topic and queue."""
        name = None if topic is None else validation.queue_name(topic, what="topic")
        return self.backend.subscriptions(name)

    def publish(
        self,
        topic: str,
        payload: JSON,
        *,
        headers: Mapping[str, Any] | None = None,
        priority: int = 0,
        delay: float | timedelta = 0,
        max_attempts: int | None = None,
        dedup_key: str | None = None,
    ) -> list[Job]:
        """Put one copy of a job into every queue subscribed to ``topic``, in one transaction.

        Each copy is its own job (acked on its own). Returns them in queue-name order.
        Raises ``NoSubscribers`` (nothing stored) when no queue subscribes to the topic, and
        ``QueueFull`` (nothing stored) when any subscribed bounded queue has no room.
        """
        name = validation.queue_name(topic, what="topic")
        now = self._clock()
        job = self._new_job(payload, priority=priority, delay=delay, run_at=None,
                            max_attempts=max_attempts, headers=headers, now=now)
        key = check_dedup_key(dedup_key)
        if key is not None:
            job = dataclasses.replace(job, dedup_key=key, dedup_window=self.dedup_window)
        try:
            return tracing.send(name, [job], lambda jobs: self.backend.publish(
                name, jobs[0], now=now, queue_defaults=self._defaults))
        except QueueFull as exc:
            if exc.queue is not None:
                self.backend.count_rejected_full(exc.queue)
            raise

    # -- schedules --------------------------------------------------------------------------

    def schedule(
        self,
        queue: str,
        payload: JSON,
        *,
        every: float | timedelta | None = None,
        cron: str | None = None,
        name: str | None = None,
        headers: Mapping[str, Any] | None = None,
        priority: int = 0,
        max_attempts: int | None = None,
        start_at: datetime | float | None = None,
        timezone: str = "UTC",
    ) -> ScheduleInfo:
        """Enqueue ``payload`` into ``queue`` on every tick of a recurring schedule.

        Give ``every`` (seconds or a timedelta) or ``cron`` (a cron expression read in
        ``timezone``). ``name`` defaults to the queue's name; scheduling the same name again
        replaces it, except that an unchanged declaration keeps its next tick (so every
        process may declare its schedules at start-up). The first tick is ``start_at`` or one
        period from now. Jobs are enqueued by a scheduler process
        (:mod:`persistent_queue.scheduler`); see there for the missed-tick rule.
        """
        target = validation.queue_name(queue)
        label = validation.queue_name(name if name is not None else target, what="schedule")
        if (every is None) == (cron is None):
            raise InvalidArgument("give exactly one of every= or cron=")
        period = None if every is None else validation.seconds(
            every, name="every", maximum=config.MAX_DELAY, allow_zero=False)
        if period is not None and period < config.MIN_SCHEDULE_EVERY:
            raise InvalidArgument(f"every must be at least {config.MIN_SCHEDULE_EVERY} s")
        expression = None if cron is None else schedules.check_cron(cron)
        schedules.zone(timezone)
        now = self._clock()
        job = self._new_job(payload, priority=priority, delay=0, run_at=None,
                            max_attempts=max_attempts, headers=headers, now=now)
        first: float | None = None
        if start_at is not None:
            first = start_at.timestamp() if isinstance(start_at, datetime) else start_at
            validation.seconds(first, name="start_at", maximum=now + config.MAX_DELAY)
        next_run_at = schedules.first_tick(every=period, cron=expression, timezone=timezone,
                                           now=now, start_at=first)
        info = ScheduleInfo(
            name=label, queue=target, payload=job.payload, headers=job.headers,
            priority=job.priority, max_attempts=max_attempts, every=period, cron=expression,
            timezone=timezone, next_run_at=next_run_at, last_run_at=None, last_job_id=None,
            runs=0, missed=0, created_at=now, updated_at=now,
        )
        return self.backend.upsert_schedule(info, keep_next_run=start_at is None)

    def unschedule(self, name: str) -> None:
        """Delete a schedule (jobs it already enqueued stay); ``ScheduleNotFound`` if none."""
        if not self.backend.delete_schedule(validation.queue_name(name, what="schedule")):
            raise ScheduleNotFound(f"no schedule named {name!r}")

    def get_schedule(self, name: str) -> ScheduleInfo:
        """A schedule by name; ``ScheduleNotFound`` if none."""
        info = self.backend.get_schedule(validation.queue_name(name, what="schedule"))
        if info is None:
            raise ScheduleNotFound(f"no schedule named {name!r}")
        return info

    def list_schedules(self) -> list[ScheduleInfo]:
        """Every schedule, by name."""
        return self.backend.list_schedules()

    def run_due_schedules(self, now: float | None = None) -> list[Job]:
        """Fire every schedule whose tick has come: at most one job per schedule and tick.

        Safe to call from several processes at once; each tick is fired by exactly one.
        A schedule whose bounded queue is full is skipped and retried on the next call, and so
        is one that cannot fire (say its time zone is no longer installed): it is logged, and
        the other schedules fire. A cron expression out of ticks finishes its schedule.
        """
        at = self._clock() if now is None else now
        fired: list[Job] = []
        for label in self.backend.due_schedules(at):
            try:
                job = self.backend.fire_schedule(label, now=at, advance=schedules.advance,
                                                 queue_defaults=self._defaults)
            except QueueFull as exc:
                if exc.queue is not None:
                    self.backend.count_rejected_full(exc.queue)
                continue
            except StorageError:
                raise  # the database, not this schedule: the whole pass is retried
            except Exception as exc:  # one broken schedule must not stop the others
                logger.error("schedule %r cannot fire (%s: %s); the others go on",
                             label, type(exc).__name__, exc)
                continue
            if job is not None:
                fired.append(job)
        return fired

