"""Producing methods of :class:`~persistent_queue.Queue`: enqueue one job or a batch.

A mixin of ``Queue``: it validates arguments and reads the clock; the backend stores the jobs
in one transaction. A bounded queue without room makes ``enqueue(block=True)`` wait for it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from . import config, flow, tracing, validation
from .errors import InvalidArgument, InvalidPayload, QueueFull
from .models import JSON, Job
from .queue_base import JobRef, QueueBase
from .storage import NewJob
from .storage.external import joined
from .workflows import check_dedup_key, check_dependencies

#: The fields of one job of :meth:`ProducingMixin.enqueue_batch`.
BATCH_FIELDS = frozenset({"payload", "priority", "delay", "run_at", "max_attempts", "headers",
                          "timeout", "group_key"})


def _same_options(specs: list[Mapping[str, Any]]) -> bool:
    """Whether every job of a batch has the first one's options, of the same types."""
    first = specs[0]
    options = [(key, value, type(value)) for key, value in first.items() if key != "payload"]
    size = len(first)
    for spec in specs:
        if not isinstance(spec, Mapping) or len(spec) != size or "payload" not in spec:
            return False
        for key, value, kind in options:
            other = spec.get(key, _MISSING)
            if other is not value and (type(other) is not kind or other != value
                                       or kind is dict):
                return False
    return True


_MISSING = object()


class ProducingMixin(QueueBase):
    """``enqueue``, ``enqueue_many`` and bounded-queue back-pressure for ``Queue``."""

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
        block_timeout: float | timedelta | None = None,
        timeout: float | timedelta | None = None,
        group_key: str | None = None,
        connection: Any = None,
    ) -> Job:
        """Store one job; it is durable when this returns (with ``connection``: when the
        caller commits).

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
                ``QueueFull`` (for at most ``block_timeout`` seconds; None waits
                indefinitely).
            timeout: seconds an attempt may run before its worker stops it and the attempt
                fails ("timed out"); default: the queue's ``timeout`` (none unless set).
            group_key: the job's group (1-256 printable characters): on a queue with group
                limits, a group's jobs start in enqueue order within ``group_concurrency``
                and ``group_rate_limit``, and claims rotate over groups
                (``docs/flow-control.md``).
            connection: the caller's own connection to the queue's database, in a
                transaction (a ``sqlite3`` or psycopg 3 connection, a SQLAlchemy
                ``Connection`` or ``Session``): the job is written there, in the caller's
                transaction, and exists only if it commits (``docs/transactions.md``).
                ``ForeignConnection``, ``NotInTransaction``, ``WrongConnectionKind``: nothing
                written. Not with ``block`` (the wait would hold the caller's transaction).
        """
        name = validation.queue_name(queue)
        now = self._clock()
        job = self._new_job(payload, priority=priority, delay=delay, run_at=run_at,
                            max_attempts=max_attempts, headers=headers, now=now,
                            timeout=timeout)
        key = check_dedup_key(dedup_key)
        parents = check_dependencies(depends_on)
        group = flow.group_key(group_key)
        if group is not None:
            job = dataclasses.replace(job, group_key=group)
        if key is not None or parents:
            window = self.dedup_window if dedup_window is None else validation.seconds(
                dedup_window, name="dedup_window", maximum=float("inf"))
            job = dataclasses.replace(job, dedup_key=key, dedup_window=window,
                                      depends_on=parents)
        if connection is not None:
            if block:
                raise InvalidArgument("block=True cannot be used with connection=: the wait "
                                      "for room would hold your transaction open")
            with joined(self.backend, connection):
                return self._store(name, [job], block=False, block_timeout=block_timeout)[0]
        return self._store(name, [job], block=block, block_timeout=block_timeout)[0]

    def enqueue_many(
        self,
        queue: str,
        payloads: Iterable[JSON],
        *,
        priority: int = 0,
        delay: float | timedelta = 0,
        max_attempts: int | None = None,
        headers: Mapping[str, Any] | None = None,
        timeout: float | timedelta | None = None,
        group_key: str | None = None,
        connection: Any = None,
    ) -> list[Job]:
        """Store many jobs in one transaction: all of them or, on any error, none.

        The options are those of :meth:`enqueue`, shared by every job; ``group_key`` puts
        every one of them in that group, in the order given; with ``connection`` the
        transaction is the caller's.
        """
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
                              max_attempts=max_attempts, headers=headers, now=now,
                              timeout=timeout)
        group = flow.group_key(group_key)
        if group is not None:
            first = dataclasses.replace(first, group_key=group)
        texts = [first.payload_json]
        texts += validation.payloads(payloads[1:], max_bytes=self.max_payload_bytes)
        with joined(self.backend, connection) if connection is not None else nullcontext():
            return tracing.send(name, [first], lambda jobs: self.backend.enqueue_uniform(
                name, jobs[0], payloads, texts, now=now, queue_defaults=self._defaults),
                count=len(payloads))

    def enqueue_batch(self, queue: str, jobs: Iterable[Mapping[str, Any]]) -> list[Job]:
        """Store many jobs, each with options of its own, in one transaction: all or none.

        Each job is a mapping with ``payload`` and, optionally, ``priority``, ``delay``,
        ``run_at``, ``max_attempts``, ``headers``, ``timeout`` and ``group_key``, as
        :meth:`enqueue` takes them (at most ``config.MAX_BATCH`` jobs). A bad job raises the
        error :meth:`enqueue` would, its message starting with the job's index; nothing is
        stored then.
        """
        name = validation.queue_name(queue)
        now = self._clock()
        specs = list(jobs)
        if len(specs) > config.MAX_BATCH:
            raise InvalidArgument(f"at most {config.MAX_BATCH} jobs per batch, not {len(specs)}")
        if not specs:
            return []
        stored: list[NewJob] = []
        for index, spec in enumerate(specs):
            try:
                stored.append(self._batch_job(spec, now))
            except (InvalidPayload, InvalidArgument) as exc:
                raise type(exc)(f"job {index}: {exc}") from None
            if index == 0 and _same_options(specs):
                # Every job has the first one's options: one statement stores them all.
                try:
                    texts = [stored[0].payload_json] + validation.payloads(
                        [spec["payload"] for spec in specs[1:]], max_bytes=self.max_payload_bytes)
                except (InvalidPayload, InvalidArgument):
                    continue  # job by job, to name the one at fault
                return self._store_uniform(name, stored[0], specs, texts, now)
        return self._store(name, stored, block=False, block_timeout=None)

    def _store_uniform(self, queue: str, template: NewJob, specs: list[Mapping[str, Any]],
                       texts: list[str], now: float) -> list[Job]:
        payloads = [spec["payload"] for spec in specs]
        try:  # in a producer span when tracing is on, as enqueue_many
            return tracing.send(queue, [template], lambda jobs: self.backend.enqueue_uniform(
                queue, jobs[0], payloads, texts, now=now, queue_defaults=self._defaults),
                count=len(payloads))
        except QueueFull:
            self.backend.count_rejected_full(queue)
            raise

    def _batch_job(self, spec: Mapping[str, Any], now: float) -> NewJob:
        if not isinstance(spec, Mapping) or "payload" not in spec:
            raise InvalidArgument("a job is a mapping with a payload")
        unknown = spec.keys() - BATCH_FIELDS
        if unknown:
            raise InvalidArgument(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                                  f"a job takes {', '.join(sorted(BATCH_FIELDS))}")
        get = spec.get
        job = self._new_job(spec["payload"], priority=get("priority", 0), delay=get("delay", 0),
                            run_at=get("run_at"), max_attempts=get("max_attempts"),
                            headers=get("headers"), now=now, timeout=get("timeout"))
        group = flow.group_key(get("group_key"))
        return job if group is None else dataclasses.replace(job, group_key=group)

    def _store(self, queue: str, jobs: list[NewJob], *, block: bool,
               block_timeout: float | timedelta | None) -> list[Job]:
        """Enqueue, in a producer span when tracing is on (:mod:`persistent_queue.tracing`)."""
        if not tracing.active():  # off: this one check
            return self._store_now(queue, jobs, block=block, block_timeout=block_timeout)
        return tracing.send(queue, jobs, partial(self._store_now, queue, block=block,
                                                 block_timeout=block_timeout))

    def _store_now(self, queue: str, jobs: list[NewJob], *, block: bool,
                   block_timeout: float | timedelta | None) -> list[Job]:
        """Enqueue; on ``QueueFull`` wait for room when ``block`` (back-pressure)."""
        if not block:
            if block_timeout is not None:
                raise InvalidArgument("block_timeout is only meaningful with block=True")
            wait = 0.0
        elif block_timeout is None:
            wait = math.inf
        else:
            wait = validation.seconds(block_timeout, name="block_timeout",
                                      maximum=config.MAX_WAIT)
        deadline = time.monotonic() + wait
        while True:
            try:
                return self.backend.enqueue(queue, jobs, now=self._clock(),
                                            queue_defaults=self._defaults)
            except QueueFull:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.backend.count_rejected_full(queue)
                    raise
                # A consumer's ack or an expired lease frees room: wake on a commit (SQLite)
                # or an announcement for this queue (PostgreSQL), else look again in 1 s.
                self.backend.wait_for_change(min(remaining, 1.0), self.poll_interval, queue)
