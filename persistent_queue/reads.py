"""Reading methods of :class:`~persistent_queue.Queue`: jobs, history, stats and health.

A mixin of ``Queue``: nothing here changes a job (``stats`` may reap expired leases first,
as every reader of counts does).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, overload

from . import config, validation
from .errors import InvalidArgument, QueueNotFound
from .models import Alert, Job, JobEvent, JobState, QueueStats, RunningJob, ThroughputPoint
from .queue_base import QueueBase


class ReadsMixin(QueueBase):
    """Jobs by id or filter, a job's history, counts, throughput and checks for ``Queue``."""

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
        """A job's whole timeline, oldest first, done jobs included: enqueued, one claimed
        per attempt (worker, attempt), failed (worker, run time, error), lease_expired,
        cancel_requested, cancelled, acked (worker, run time), dead_lettered, redriven.

        Claims and acks write no event row: they are read from the job's row and from the
        run times the other events record (a claim given back by ``requeue`` leaves none).
        """
        job_id = validation.integer(job_id, name="job id", minimum=1, maximum=2**63 - 1)
        return self.backend.history(job_id)

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

    def alerts(self, queue: str | None = None) -> list[Alert]:
        """The alerts of every queue (or one) that has thresholds set, firing or not, measured
        at one moment: by queue, in the order depth, oldest_age, failure_rate, dead_letters.

        See :meth:`create_queue` for the kinds; ``QueueNotFound`` for an unknown ``queue``.
        """
        name = None if queue is None else validation.queue_name(queue)
        if name is not None and self.backend.get_queue(name) is None:
            raise QueueNotFound(f"no queue named {name!r}")
        now = self._clock()
        self._maybe_reap(now)
        found = self.backend.alerts(now, failures_since=now - config.ALERT_FAILURE_WINDOW)
        return [alert for alert in found if name is None or alert.queue == name]

    def running_jobs(self, queue: str | None = None, *, limit: int = 100) -> list[RunningJob]:
        """Jobs running now (leased, the lease live), of every queue or one, longest running
        first: which worker holds each, since when, its progress and its attempt.

        Read through the index of leases: its cost grows with the jobs running, never with
        the jobs waiting or done. A lease that expired (its worker died or hung) is not
        running: ``stats`` counts it as ``expired``. ``QueueNotFound`` for an unknown
        ``queue``.
        """
        name = None if queue is None else validation.queue_name(queue)
        size = validation.integer(limit, name="limit", minimum=1, maximum=config.MAX_BATCH)
        if name is not None and self.backend.get_queue(name) is None:
            raise QueueNotFound(f"no queue named {name!r}")
        return self.backend.running_jobs(name, limit=size, now=self._clock())

    def throughput(
        self, *, window: float | timedelta = 3600, bucket: float | timedelta = 60
    ) -> list[ThroughputPoint]:
        """Enqueued/acked/failed/dead counts per queue per ``bucket`` over the last ``window``.

        Computed from the jobs themselves, so it covers done jobs until ``cleanup`` removes them.
        """
        span = validation.seconds(window, name="window", maximum=config.MAX_DELAY)
        step = validation.seconds(bucket, name="bucket", maximum=span or 1.0, allow_zero=False)
        return self.backend.throughput(since=self._clock() - span, bucket=step)

    # -- the database ----------------------------------------------------------------------

    def schema_version(self) -> int:
        """The database's schema version (``PRAGMA user_version``)."""
        return self.backend.schema_version()

    def check_integrity(self) -> list[str]:
        """Problems found by a structural check of the database; empty when it is sound.

        Reads every page (SQLite's ``quick_check``), so it takes time on a large database.
        """
        return self.backend.quick_check()
