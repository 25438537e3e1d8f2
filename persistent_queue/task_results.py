"""The task side of :class:`~persistent_queue.Queue`: declaring tasks, reading results.

``q.task(...)`` declares a task (see :mod:`.tasks`); ``q.result(job_id, timeout=...)`` waits
for a job's stored result; ``q.dependency_results(job_id)`` reads the results of the jobs a job
depends on. Results are stored by ``q.ack(job, result=...)`` in the ack's own transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar, overload

from . import validation
from .errors import ResultTimeout, TaskFailed
from .models import JSON, JobState
from .queue_base import QueueBase
from .storage import RESULTS
from .tasks import Task, TaskRegistry

P = ParamSpec("P")
R = TypeVar("R")

#: Longest single wait between two looks at the job: a job finished without a wake-up (acked
#: without a result on PostgreSQL, whose acks announce only results) is still seen this soon.
_RECHECK = 1.0


class TaskResultsMixin(QueueBase):
    """Tasks and results (see the module docstring)."""

    _task_registry: TaskRegistry | None = None

    @property
    def tasks(self) -> TaskRegistry:
        """The tasks declared on this queue with :meth:`task`, by name."""
        if self._task_registry is None:
            self._task_registry = TaskRegistry(self)  # type: ignore[arg-type]
        return self._task_registry

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(self, fn: None = None, /, *, queue: str = "default",
             max_attempts: int | None = None, timeout: float | None = None,
             name: str | None = None) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(self, fn: Callable[P, R] | None = None, /, *, queue: str = "default",
             max_attempts: int | None = None, timeout: float | None = None,
             name: str | None = None) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Declare a function as a task: ``@q.task`` or ``@q.task(queue=..., ...)``.

        Args:
            queue: the queue its jobs go to (``.options(queue=...)`` overrides it).
            max_attempts: attempts before its job is dead-lettered (default: the queue's).
            timeout: seconds an attempt may run: stored with each of its jobs, whose
                worker stops it then and fails the attempt (default: the queue's).
            name: the name workers route by; default ``"module.qualname"``. A name already
                declared on this queue is ``InvalidArgument``.
        """
        def declare(function: Callable[P, R]) -> Task[P, R]:
            return self.tasks.register(function, name=name, queue=queue,
                                       max_attempts=max_attempts, timeout=timeout)

        return declare if fn is None else declare(fn)

    def result(self, job_id: int, timeout: float | None = None) -> JSON:
        """The stored result of job ``job_id``, waiting until it is done.

        Waits on the backend's wake-up (SQLite's data_version, PostgreSQL's LISTEN), with no
        busy loop. ``timeout`` None waits indefinitely. Raises ``TaskFailed`` (``.error``:
        the last error, else the dead-letter reason) once the job is dead-lettered, or
        (``.error``: the reason given, else "cancelled") once it is cancelled,
        ``ResultTimeout`` (a ``TimeoutError``) when it is not done in time, ``JobNotFound``
        for an unknown id (or a done job already cleaned up). A job acked without a result
        gives None.
        """
        validation.integer(job_id, name="job id", minimum=1, maximum=2**63 - 1)
        wait = None if timeout is None else validation.seconds(
            timeout, name="timeout", maximum=float("inf"))
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            job = self.backend.get_job(job_id)
            if job.state is JobState.DONE:
                return job.result
            if job.state is JobState.DEAD:
                error = job.last_error or self._dead_reason(job_id)
                raise TaskFailed(f"job {job_id} was dead-lettered: {error}", job_id=job_id,
                                 error=error)
            if job.state is JobState.CANCELLED:
                error = job.cancel_reason or "cancelled"
                raise TaskFailed(f"job {job_id} was cancelled: {error}", job_id=job_id,
                                 error=error)
            remaining = _RECHECK if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise ResultTimeout(f"job {job_id} is {job.state.value}, not done, after "
                                    f"{wait:g}s")
            self.backend.wait_for_change(min(remaining, _RECHECK), self.poll_interval,
                                         queue=RESULTS)

    def _dead_reason(self, job_id: int) -> str | None:
        """Why the job was dead-lettered, from its history (when no attempt left an error)."""
        reasons = [e.detail for e in self.backend.history(job_id) if e.event == "dead_lettered"]
        return reasons[-1] if reasons else None

    def dependency_results(self, job_id: int) -> dict[int, JSON]:
        """``{parent_id: result}`` for every job that job ``job_id`` depends on: a fan-in's
        inputs. A parent's result is None if it was acked without one, is not done, or was
        dead-lettered or cleaned up. ``JobNotFound`` for an unknown id."""
        validation.integer(job_id, name="job id", minimum=1, maximum=2**63 - 1)
        results = self.backend.dependency_results(job_id)
        if not results:
            self.backend.get_job(job_id)  # JobNotFound for an unknown id
        return results
