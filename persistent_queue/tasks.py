"""Tasks: plain functions declared on a :class:`~persistent_queue.Queue`, run by workers.

For users::

    q = Queue("data/queue.db")

    @q.task(queue="emails", max_attempts=5)
    def send_email(to: str, subject: str = "") -> dict:
        return {"sent": to}

    handle = send_email.delay("a@b.c", subject="hi")     # stored at once -> TaskHandle
    handle.result(timeout=10)                            # {"sent": "a@b.c"}
    send_email.options(priority=5, depends_on=[handle]).delay("b@c.d")
    send_email("a@b.c")                                  # runs inline, stores nothing

    @q.task(queue="fetch")                               # a coroutine function is a task too
    async def fetch(url: str) -> int: ...

    handle = await fetch.adelay("https://example.org")   # .delay() stores it as well
    await handle.aresult(timeout=30)                     # waits holding no thread

A task job's payload is ``{"task": name, "args": [...], "kwargs": {...}}`` (checked as JSON at
``.delay()``: ``InvalidPayload`` at once) and it carries the header ``{"task": name}``.

For the worker (the whole interface it needs)::

    registry = app_queue.tasks                 # TaskRegistry: the tasks declared on a Queue
    name = task_name(job)                      # the task a job names, None for a raw job
    name in registry                           # whether this worker can run it
    value = registry.run(job, queue=worker_q)  # sets current_job(), decodes args/kwargs,
                                               # calls the function; UnknownTask if unknown,
                                               # InvalidPayload if not a task job
    encode_result(value)                       # JSON text; InvalidPayload (not JSON) or
                                               # PayloadTooLarge (> config.MAX_RESULT_BYTES)
    worker_q.ack(job, result=value)            # stores the result in the ack's transaction

``current_job()`` inside a running task returns its job (a :class:`TaskJob`: a ``Job`` with
``task``, ``args``, ``kwargs``, ``dependency_results()``, ``set_progress(fraction, message)``
and ``raise_if_cancelled()``); outside one it raises ``NoCurrentJob``. A worker that watches
for cancellation passes ``registry.run(job, queue=worker_q, cancel=event)`` (anything with
``is_set()``, a ``threading.Event``): the task's ``raise_if_cancelled()`` then reads that
event; without one it reads the database, at most every ``config.CANCEL_CHECK_INTERVAL``.

A task declared ``async def`` (``task.is_async``) is awaited: ``await registry.arun(job, ...)``
on the worker's event loop; ``registry.run`` (a caller without a loop: the process executor's
child) runs it to completion on a new loop with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar

from . import config, flow, validation
from .errors import (
    InvalidArgument,
    InvalidPayload,
    JobCancelled,
    NoCurrentJob,
    PayloadTooLarge,
    QueueError,
    UnknownTask,
)
from .models import JSON, Job, JobState

if TYPE_CHECKING:
    from .queue import Queue

P = ParamSpec("P")
R = TypeVar("R")

class _NoResult:
    """The type of :data:`NO_RESULT`."""

    def __repr__(self) -> str:
        return "NO_RESULT"


#: ``Queue.ack(job)`` without ``result=``: nothing is stored (None would store JSON null).
NO_RESULT: Any = _NoResult()

#: The header every task job carries: its task's name.
TASK_HEADER = "task"
_PAYLOAD_KEYS = frozenset({"task", "args", "kwargs"})


def task_name(job: Job) -> str | None:
    """The name of the task ``job`` runs, or None for a job that is not a task job."""
    payload = job.payload
    if (isinstance(payload, dict) and payload.keys() == _PAYLOAD_KEYS
            and isinstance(payload["task"], str) and isinstance(payload["args"], list)
            and isinstance(payload["kwargs"], dict)):
        return payload["task"]
    return None


def encode_result(value: Any) -> str:
    """A task's return value as stored: compact JSON text of at most
    ``config.MAX_RESULT_BYTES`` bytes. ``InvalidPayload`` when it is not JSON,
    ``PayloadTooLarge`` when it is too large: either fails the attempt."""
    text = validation.encode_json(value, where="task result")
    size = len(text.encode("utf-8"))
    if size > config.MAX_RESULT_BYTES:
        raise PayloadTooLarge(f"task result is {size} bytes encoded; the limit is "
                              f"{config.MAX_RESULT_BYTES} (config.MAX_RESULT_BYTES)")
    return text


class CancelSignal(Protocol):
    """What a worker hands a running task to say its job's cancellation was requested
    (a ``threading.Event``, or anything with ``is_set()``)."""

    def is_set(self) -> bool: ...


class TaskJob(Job):
    """The job a task is running (what :func:`current_job` returns): a ``Job`` that can also
    read its parents' results, report its progress and stop when it is cancelled."""

    _queue: Queue
    _cancel: CancelSignal | None
    _next_check: float  # monotonic time of the next database read by raise_if_cancelled

    @classmethod
    def of(cls, job: Job, queue: Queue, cancel: CancelSignal | None = None) -> TaskJob:
        fields = {f.name: getattr(job, f.name) for f in dataclasses.fields(job)}
        running = cls(**fields)
        object.__setattr__(running, "_queue", queue)
        object.__setattr__(running, "_cancel", cancel)
        object.__setattr__(running, "_next_check", float("-inf"))
        return running

    @property
    def task(self) -> str | None:
        """The task's name."""
        return task_name(self)

    @property
    def args(self) -> list[Any]:
        """The positional arguments the task was called with."""
        return list(self.payload["args"]) if self.task else []

    @property
    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments the task was called with."""
        return dict(self.payload["kwargs"]) if self.task else {}

    def dependency_results(self) -> dict[int, JSON]:
        """``{parent_id: result}`` of every job this one depends on (see
        :meth:`Queue.dependency_results`)."""
        return self._queue.dependency_results(self.id)

    def set_progress(self, fraction: float, message: str | None = None) -> None:
        """Store how far the task has come (``fraction`` from 0 to 1, and words), renewing
        its lease (see :meth:`Queue.set_progress`). Raises ``JobCancelled`` when the job's
        cancellation was requested: let it propagate (the worker confirms the cancel)."""
        stored = self._queue.set_progress(self, fraction, message)
        if stored.cancel_requested:
            raise self._cancelled(stored.cancel_reason)
        if self._cancel is not None and self._cancel.is_set():
            raise self._cancelled()

    def raise_if_cancelled(self) -> None:
        """A cooperative cancellation point: raises ``JobCancelled`` when the job's
        cancellation was requested (let it propagate); returns at once otherwise.

        Reads the worker's cancellation event when it gave one; else the database, at most
        every ``config.CANCEL_CHECK_INTERVAL`` seconds (calls in between return at once).
        """
        if self._cancel is not None:
            if self._cancel.is_set():
                raise self._cancelled()
            return
        now = time.monotonic()
        if now < self._next_check:
            return
        object.__setattr__(self, "_next_check", now + config.CANCEL_CHECK_INTERVAL)
        if self._queue.cancel_requests([self.id]):
            raise self._cancelled()

    async def aset_progress(self, fraction: float, message: str | None = None) -> None:
        """:meth:`set_progress` for an ``async def`` task: the write runs off the event loop."""
        from .aio import async_queue_for

        stored = await async_queue_for(self._queue).set_progress(self, fraction, message)
        if stored.cancel_requested:
            raise self._cancelled(stored.cancel_reason)
        if self._cancel is not None and self._cancel.is_set():
            raise self._cancelled()

    async def adependency_results(self) -> dict[int, JSON]:
        """:meth:`dependency_results` for an ``async def`` task (read off the event loop)."""
        from .aio import async_queue_for

        return await async_queue_for(self._queue).dependency_results(self.id)

    def _cancelled(self, reason: str | None = None) -> JobCancelled:
        if reason is None:
            try:
                reason = self._queue.get_job(self.id).cancel_reason
            except QueueError:  # gone, or the database failed: the reason is a detail
                reason = None
        suffix = f": {reason}" if reason else ""
        return JobCancelled(f"job {self.id} was cancelled{suffix}", job_id=self.id,
                            reason=reason)


_current: ContextVar[TaskJob | None] = ContextVar("persistent_queue_current_job", default=None)


def current_job() -> TaskJob:
    """The job of the task running in this context (set by the worker around the call).

    Raises ``NoCurrentJob`` outside a running task (a plain inline call included)."""
    job = _current.get()
    if job is None:
        raise NoCurrentJob("current_job() is only available inside a task run by a worker")
    return job


class TaskHandle:
    """A stored task job: its ``id``, its current ``job``/``status`` and its ``result()``."""

    __slots__ = ("_queue", "enqueued", "id", "task")

    def __init__(self, queue: Queue, job: Job, task: str) -> None:
        self._queue = queue
        #: The job as stored by ``delay`` (``deduplicated`` says whether it already existed).
        self.enqueued = job
        self.id = job.id
        self.task = task

    def __repr__(self) -> str:
        return f"TaskHandle(id={self.id}, task={self.task!r})"

    @property
    def job(self) -> Job:
        """The job as stored now."""
        return self._queue.get_job(self.id)

    @property
    def status(self) -> JobState:
        """The job's state now (waiting, ready, leased, done or dead)."""
        return self.job.state

    def result(self, timeout: float | None = None) -> JSON:
        """Wait for the result (see :meth:`Queue.result`)."""
        return self._queue.result(self.id, timeout=timeout)

    async def aresult(self, timeout: float | None = None) -> JSON:
        """Wait for the result without blocking the event loop or holding a thread (see
        :meth:`AsyncQueue.result <persistent_queue.AsyncQueue.result>`)."""
        from .aio import async_queue_for

        return await async_queue_for(self._queue).result(self.id, timeout=timeout)


def _job_ids(depends_on: Sequence[TaskHandle | Job | int]) -> list[Job | int]:
    return [ref.id if isinstance(ref, TaskHandle) else ref for ref in depends_on]


@dataclasses.dataclass(frozen=True)
class _Options:
    """What ``Task.options`` binds (as ``Queue.enqueue`` takes it)."""

    queue: str | None = None
    delay: float | timedelta = 0
    run_at: datetime | float | None = None
    priority: int = 0
    dedup_key: str | None = None
    depends_on: tuple[TaskHandle | Job | int, ...] = ()
    headers: Mapping[str, Any] | None = None
    max_attempts: int | None = None
    timeout: float | timedelta | None = None
    group_key: str | None = None
    #: The caller's connection the job is written on (``Queue.enqueue(connection=)``).
    connection: Any = dataclasses.field(default=None, repr=False, compare=False)


class TaskOptions(Generic[P, R]):
    """A task with options bound for its jobs (from :meth:`Task.options`): ``.delay(...)``."""

    __slots__ = ("options", "task")

    def __init__(self, task: Task[P, R], options: _Options) -> None:
        self.task = task
        self.options = options

    def __repr__(self) -> str:
        return f"TaskOptions({self.task.name!r}, {self.options})"

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle:
        """Store a job that runs the task with these arguments and the bound options."""
        return self.task._enqueue(self.options, args, kwargs)

    def delay_on(self, store: Queue, /, *args: P.args, **kwargs: P.kwargs) -> TaskHandle:
        """``delay`` storing the job through ``store`` rather than the Queue the task was
        declared on (what ``POST /tasks/{name}`` does with the API's own Queue)."""
        return self.task._enqueue(self.options, args, kwargs, store)

    async def adelay(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle:
        """``delay`` for asyncio: the job is stored off the event loop."""
        return await self.task._aenqueue(self.options, args, kwargs)


class Task(Generic[P, R]):
    """A function declared with ``@q.task``: call it to run it inline, ``.delay(...)`` to
    store a job that a worker runs, ``.options(...)`` to set that job's options."""

    def __init__(self, registry: TaskRegistry, fn: Callable[P, R], *, name: str, queue: str,
                 max_attempts: int | None, timeout: float | None) -> None:
        self.registry = registry
        self.fn = fn
        self.name = name
        self.queue = queue
        self.max_attempts = max_attempts
        #: Seconds an attempt may run (stored with each job; its worker stops it then and
        #: fails the attempt); None: the queue's.
        self.timeout = timeout
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"Task({self.name!r}, queue={self.queue!r})"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    @property
    def is_async(self) -> bool:
        """Whether the task is a coroutine function (``async def``), awaited by the worker."""
        return inspect.iscoroutinefunction(self.fn)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle:
        """Store a job that runs the task with these arguments; durable on return."""
        return self._enqueue(_Options(), args, kwargs)

    async def adelay(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle:
        """``delay`` for asyncio: the job is stored on the thread pool of the Queue's
        :func:`~persistent_queue.aio.async_queue_for`, never blocking the event loop."""
        return await self._aenqueue(_Options(), args, kwargs)

    async def _aenqueue(self, opts: _Options, args: tuple[Any, ...],
                        kwargs: Mapping[str, Any]) -> TaskHandle:
        from .aio import async_queue_for

        aq = async_queue_for(self.registry.queue)
        return await aq._run(functools.partial(self._enqueue, opts, args, kwargs))

    def options(self, *, queue: str | None = None, delay: float | timedelta = 0,
                run_at: datetime | float | None = None, priority: int = 0,
                dedup_key: str | None = None,
                depends_on: Sequence[TaskHandle | Job | int] = (),
                headers: Mapping[str, Any] | None = None,
                max_attempts: int | None = None,
                timeout: float | timedelta | None = None,
                group_key: str | None = None,
                connection: Any = None) -> TaskOptions[P, R]:
        """The task with options for the next ``.delay`` (as ``Queue.enqueue`` takes them;
        ``depends_on`` also takes handles; ``timeout`` overrides the task's; ``group_key``
        puts the job in a group for the queue's group limits; ``connection`` writes the job
        in the caller's transaction, ``docs/transactions.md``)."""
        if queue is not None:
            validation.queue_name(queue)
        validation.run_timeout(timeout)
        if isinstance(depends_on, str | bytes | Mapping) or not isinstance(depends_on, Iterable):
            raise InvalidArgument("depends_on must be a list of task handles, jobs or job ids, "
                                  f"not {type(depends_on).__name__}")
        if headers is not None and not isinstance(headers, Mapping):
            raise InvalidPayload("headers must be a JSON object of string keys")
        return TaskOptions(self, _Options(queue, delay, run_at, priority, dedup_key,
                                          tuple(depends_on), headers, max_attempts, timeout,
                                          flow.group_key(group_key), connection))

    def _enqueue(self, opts: _Options, args: tuple[Any, ...],
                 kwargs: Mapping[str, Any], store: Queue | None = None) -> TaskHandle:
        payload = {"task": self.name, "args": list(args), "kwargs": dict(kwargs)}
        try:
            validation.encode_json(payload, where=f"the arguments of task {self.name!r}")
        except InvalidPayload as exc:
            raise InvalidPayload(str(exc).replace("payload", "arguments")) from exc
        headers = dict(opts.headers or {})
        if TASK_HEADER in headers and headers[TASK_HEADER] != self.name:
            raise InvalidArgument(f"the header {TASK_HEADER!r} is the task's name; "
                                  "it cannot be set")
        headers[TASK_HEADER] = self.name
        queue = store if store is not None else self.registry.queue
        job = queue.enqueue(
            opts.queue or self.queue, payload, priority=opts.priority, delay=opts.delay,
            run_at=opts.run_at,
            max_attempts=opts.max_attempts if opts.max_attempts is not None
            else self.max_attempts,
            headers=headers, depends_on=_job_ids(opts.depends_on) or None,
            dedup_key=opts.dedup_key,
            timeout=opts.timeout if opts.timeout is not None else self.timeout,
            group_key=opts.group_key, connection=opts.connection)
        return TaskHandle(queue, job, self.name)


class TaskRegistry:
    """The tasks declared on one Queue (``q.tasks``), by name."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._tasks: dict[str, Task[Any, Any]] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[Task[Any, Any]]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)

    def names(self) -> list[str]:
        """Every task's name, sorted."""
        return sorted(self._tasks)

    def get(self, name: str) -> Task[Any, Any]:
        """The task called ``name``; ``UnknownTask`` if there is none."""
        try:
            return self._tasks[name]
        except KeyError:
            raise UnknownTask(f"unknown task {name!r}") from None

    def register(self, fn: Callable[P, R], *, name: str | None = None,
                 queue: str = "default", max_attempts: int | None = None,
                 timeout: float | None = None) -> Task[P, R]:
        """Declare ``fn`` as a task (what ``@q.task(...)`` does); ``InvalidArgument`` for a
        name already taken."""
        if not callable(fn):
            raise InvalidArgument(f"a task must be a function, not {type(fn).__name__}")
        task_name_ = name if name is not None else f"{fn.__module__}.{fn.__qualname__}"
        if not isinstance(task_name_, str) or not task_name_ or len(task_name_) > 200:
            raise InvalidArgument("a task name must be a non-empty string of at most 200 "
                                  "characters")
        if not task_name_.isprintable():
            raise InvalidArgument(f"a task name must be printable text, not {task_name_!r}")
        if task_name_ in self._tasks:
            raise InvalidArgument(f"a task named {task_name_!r} is already declared on this "
                                  "queue (give one of them another name=)")
        validation.queue_name(queue)
        if max_attempts is not None:
            validation.integer(max_attempts, name="max_attempts", minimum=1,
                               maximum=config.MAX_ATTEMPTS_LIMIT)
        timeout = validation.run_timeout(timeout)
        task = Task(self, fn, name=task_name_, queue=queue, max_attempts=max_attempts,
                    timeout=timeout)
        self._tasks[task_name_] = task
        return task

    def run(self, job: Job, queue: Queue | None = None,
            cancel: CancelSignal | None = None) -> Any:
        """Run the task ``job`` names with its arguments, with ``current_job()`` set to it;
        returns what the task returned (encode it with :func:`encode_result`).

        ``queue`` is the Queue the worker claimed the job with (``dependency_results``,
        ``set_progress`` and cancellation checks go through it); default: this registry's.
        ``cancel`` is the worker's cancellation event for the job (``is_set()`` once its
        cancellation was requested), read by ``raise_if_cancelled()``. ``UnknownTask`` when
        no task here has the job's name, ``InvalidPayload`` when the job is not a task job.
        """
        name = task_name(job)
        if name is None:
            raise InvalidPayload(f"job {job.id} is not a task job (its payload is not "
                                 '{"task": ..., "args": [...], "kwargs": {...}})')
        task = self.get(name)
        token = _current.set(TaskJob.of(job, queue or self.queue, cancel))
        try:
            value = task.fn(*job.payload["args"], **job.payload["kwargs"])
            if inspect.iscoroutine(value):  # an async task, run where no loop is at hand
                return asyncio.run(value)
            return value
        finally:
            _current.reset(token)

    async def arun(self, job: Job, queue: Queue | None = None,
                   cancel: CancelSignal | None = None) -> Any:
        """:meth:`run` on the running event loop: an ``async def`` task is awaited (a plain
        one is called in the loop's thread). Same errors as ``run``."""
        name = task_name(job)
        if name is None:
            raise InvalidPayload(f"job {job.id} is not a task job")
        task = self.get(name)
        token = _current.set(TaskJob.of(job, queue or self.queue, cancel))
        try:
            value = task.fn(*job.payload["args"], **job.payload["kwargs"])
            return await value if inspect.isawaitable(value) else value
        finally:
            _current.reset(token)
