"""``Backend``: a ``django.tasks`` backend whose tasks are jobs of a persistent_queue database.

Settings (``OPTIONS`` may be left out; ``db`` is a file path or a ``postgresql://`` URL)::

    TASKS = {"default": {"BACKEND": "persistent_queue.contrib.django.Backend",
                         "QUEUES": ["default", "emails"],
                         "OPTIONS": {"db": "data/queue.db"}}}

A task enqueued through it is one job: in the queue of the task's ``queue_name``, with the
payload ``{"task": "django:<module path>", "args": [...], "kwargs": {...}}``, the headers
``{"task": <same>, "django_backend": <alias>}``, the task's priority (Django's -100..100, as
is: higher runs first) and its ``run_after`` as the job's ``run_at``. A job gets
``OPTIONS["max_attempts"]`` attempts (default 1: a task that raises is FAILED, as Django's
backends do); more make a failed attempt READY again, with its error in ``errors``. The
result id is the job id, as text. ``python manage.py pq_worker`` (or ``pq worker --django
SETTINGS``) runs the tasks (``worker.py``).

The backend's Queue is opened once per process and database and shared by its threads.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from ... import config, validation
from ...aio import async_queue_for
from ...errors import InvalidArgument, JobNotFound
from ...models import Job, JobEvent, JobState
from ...queue import Queue
from .compat import (
    BaseTaskBackend,
    Task,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_enqueued,
)

#: What a Django task's name starts with in its job (``django:<module path>``).
TASK_PREFIX = "django:"
#: The header naming the alias of the backend that enqueued the job.
BACKEND_HEADER = "django_backend"
#: The header holding the task's ``run_after`` (epoch seconds), when it had one.
RUN_AFTER_HEADER = "django_run_after"
#: The line the worker adds (as an exception note) to a failed task's error: the module
#: path of the exception's class, read back as ``TaskError.exception_class_path``.
EXCEPTION_NOTE = "django task exception class: "

_OPTIONS = {"db", "durability", "max_attempts"}
_queues: dict[tuple[str, str], Queue] = {}
_queues_lock = threading.Lock()


def shared_queue(db: str, durability: str = "full") -> Queue:
    """The process's Queue for ``db`` (opened on first use, shared by every thread)."""
    with _queues_lock:
        key = (db, durability)
        if key not in _queues:
            _queues[key] = Queue(db, durability="normal" if durability == "normal" else "full")
        return _queues[key]


def close_queues() -> None:
    """Close every Queue the backends of this process opened (the next use opens anew)."""
    with _queues_lock:
        queues = list(_queues.values())
        _queues.clear()
    for queue in queues:
        queue.close()


class Backend(BaseTaskBackend):  # type: ignore[misc]
    """Stores ``django.tasks`` tasks as persistent_queue jobs (see the module docstring).

    ``InvalidArgument`` at construction for an unknown option, a bad queue name or a bad
    ``max_attempts``. ``enqueue`` raises persistent_queue's errors for what the database
    refuses (``InvalidPayload`` for arguments that are not JSON).
    """

    supports_defer = True
    supports_async_task = True  # awaited on the worker's event loop
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: Mapping[str, Any]) -> None:
        super().__init__(alias, params)
        unknown = set(self.options) - _OPTIONS
        if unknown:
            raise InvalidArgument(f"unknown OPTIONS of task backend {alias!r}: "
                                  f"{', '.join(sorted(unknown))} (known: "
                                  f"{', '.join(sorted(_OPTIONS))})")
        for name in self.queues:
            validation.queue_name(name)
        self.db: str = str(self.options.get("db", config.DEFAULT_DB_PATH))
        self.durability: str = str(self.options.get("durability", "full"))
        if self.durability not in ("full", "normal"):
            raise InvalidArgument(f"OPTIONS durability must be 'full' or 'normal', "
                                  f"not {self.durability!r}")
        self.max_attempts: int = validation.integer(
            self.options.get("max_attempts", 1), name="OPTIONS max_attempts", minimum=1,
            maximum=config.MAX_ATTEMPTS_LIMIT)

    @property
    def queue(self) -> Queue:
        """The Queue of this backend's database."""
        return shared_queue(self.db, self.durability)

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        """Store a job running ``task(*args, **kwargs)``; its TaskResult (READY)."""
        queue, payload, options = self._job(task, args, kwargs)
        return self._enqueued(task, self.queue.enqueue(queue, payload, **options))

    async def aenqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        """``enqueue`` through the Queue's AsyncQueue: the event loop only awaits."""
        queue, payload, options = self._job(task, args, kwargs)
        job = await async_queue_for(self.queue).enqueue(queue, payload, **options)
        return self._enqueued(task, job)

    def get_result(self, result_id: str) -> Any:
        """The TaskResult of job ``result_id`` as stored now; ``TaskResultDoesNotExist``
        for an id that names no job of a Django task (or one cleaned up since)."""
        job_id = _job_id(result_id)
        try:
            job = self.queue.get_job(job_id)
        except JobNotFound:
            raise TaskResultDoesNotExist(result_id) from None
        return self._result_of(result_id, job, self.queue.history(job_id))

    async def aget_result(self, result_id: str) -> Any:
        """``get_result`` through the Queue's AsyncQueue: the event loop only awaits."""
        aq = async_queue_for(self.queue)
        job_id = _job_id(result_id)
        try:
            job = await aq.get_job(job_id)
        except JobNotFound:
            raise TaskResultDoesNotExist(result_id) from None
        return self._result_of(result_id, job, await aq.history(job_id))

    def _job(self, task: Any, args: Any, kwargs: Any
             ) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """The queue, payload and ``enqueue`` options of ``task``'s job."""
        self.validate_task(task)
        name = TASK_PREFIX + task.module_path
        headers: dict[str, Any] = {"task": name, BACKEND_HEADER: self.alias}
        run_at = None
        if task.run_after is not None:
            run_at = task.run_after.timestamp()  # a naive datetime is local time
            headers[RUN_AFTER_HEADER] = run_at
        payload = {"task": name, "args": list(args), "kwargs": dict(kwargs)}
        return task.queue_name, payload, {"priority": task.priority, "run_at": run_at,
                                          "headers": headers,
                                          "max_attempts": self.max_attempts}

    def _enqueued(self, task: Any, job: Job) -> Any:
        result = _result(task, job, [], self.alias)
        task_enqueued.send(type(self), task_result=result)
        return result

    def _result_of(self, result_id: str, job: Job, history: list[JobEvent]) -> Any:
        name = job.headers.get("task")
        if not isinstance(name, str) or not name.startswith(TASK_PREFIX):
            raise TaskResultDoesNotExist(result_id)
        try:
            task = import_task(name)
        except ImportError as exc:
            raise TaskResultDoesNotExist(f"{result_id}: {exc}") from None
        return _result(task, job, history, str(job.headers.get(BACKEND_HEADER, self.alias)))


def _job_id(result_id: str) -> int:
    """The job id a result id names; ``TaskResultDoesNotExist`` if it names none."""
    try:
        return validation.integer(int(result_id), name="result id", minimum=1,
                                  maximum=2**63 - 1)
    except (ValueError, TypeError, InvalidArgument):
        raise TaskResultDoesNotExist(result_id) from None


def import_task(name: str) -> Any:
    """The Task a job's task name (``django:<module path>``) names; ``ImportError`` if it
    does not import or is not a Task."""
    path = name.removeprefix(TASK_PREFIX)
    target = import_string(path)
    if not isinstance(target, Task):
        raise ImportError(f"{path!r} is a {type(target).__name__}, not a django task")
    return target


_STATUS = {JobState.WAITING: "READY", JobState.READY: "READY", JobState.LEASED: "RUNNING",
           JobState.DONE: "SUCCESSFUL", JobState.DEAD: "FAILED", JobState.CANCELLED: "FAILED"}


def _result(task: Any, job: Job, history: list[JobEvent], alias: str) -> Any:
    """The TaskResult of ``job`` (running ``task``) from its row and its ``history``."""
    run_after = job.headers.get(RUN_AFTER_HEADER)
    task = task.using(priority=job.priority, queue_name=job.queue, backend=alias,
                      run_after=_time(run_after) if isinstance(run_after, float) else None)
    claims = [event for event in history if event.event == "claimed"]
    finished = job.finished_at if job.state in (
        JobState.DONE, JobState.DEAD, JobState.CANCELLED) else None
    result = TaskResult(
        task=task, id=str(job.id), status=TaskResultStatus[_STATUS[job.state]],
        enqueued_at=_time(job.created_at),
        started_at=_time(claims[0].at if claims else job.started_at),
        finished_at=_time(finished),
        last_attempted_at=_time(job.started_at),
        args=job.payload["args"], kwargs=job.payload["kwargs"], backend=alias,
        errors=[_error(event.detail) for event in history
                if event.event == "failed" and event.detail is not None],
        worker_ids=[event.worker or "" for event in claims])
    if job.state is JobState.DONE:
        object.__setattr__(result, "_return_value", job.result)
    return result


def _time(epoch: float | None) -> datetime | None:
    """Epoch seconds as Django wants them: aware (UTC) with ``USE_TZ``, else naive local."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment if settings.USE_TZ else timezone.make_naive(moment)


def _error(text: str) -> Any:
    """A failed attempt's stored error as a TaskError (the class from the worker's note)."""
    path = "builtins.Exception"
    for line in reversed(text.splitlines()):
        if line.startswith(EXCEPTION_NOTE):
            path = line.removeprefix(EXCEPTION_NOTE).strip()
            break
    return TaskError(exception_class_path=path, traceback=text)
