"""Running Django tasks in persistent_queue's worker.

``registry`` is the worker's task registry for jobs stored by :class:`Backend`: it holds every
task name ``django:<module path>``, imports that Task when a job names it (``django.setup()``
done first, from ``DJANGO_SETTINGS_MODULE``) and runs it with its arguments, the
``TaskContext`` when it takes one, and ``current_job()`` set as for any task (an ``async def``
task is awaited on the worker's event loop, many at once). Its return value
is the job's result (JSON); an exception fails the attempt, noted with its class's module path
(``TaskError.exception_class_path``). Django's database connections are closed around each
task when unusable or past their age, as Django does around a request.

``APP`` names it as ``pq worker --app`` takes it, so a ``--executor process`` child imports it
too. ``worker_setup`` gives the database and queues of a backend alias for the commands
(``manage.py pq_worker``, ``pq worker --django SETTINGS``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from dataclasses import dataclass
from typing import Any

from ...errors import InvalidArgument, InvalidPayload, MissingDependency, UnknownTask
from ...models import Job
from ...queue import Queue
from ...tasks import CancelSignal, Task, TaskRegistry, current_job

logger = logging.getLogger(__name__)

#: ``registry`` as ``--app`` names it.
APP = "persistent_queue.contrib.django.worker:registry"
#: The handler of jobs that name no task (not stored by the backend): they fail.
HANDLER = "persistent_queue.contrib.django.worker:not_a_task"


def setup_django() -> None:
    """``django.setup()`` unless the apps are loaded already (``DJANGO_SETTINGS_MODULE``)."""
    from django.apps import apps

    if not apps.ready:
        import django

        django.setup()


class DjangoTaskRegistry(TaskRegistry):
    """Every Django task (names ``django:<module path>``), imported when a job names one."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task[Any, Any]] = {}

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is a Django task that imports here (a job naming one that does
        not is the worker's unknown task: its attempt fails, the reason logged)."""
        return isinstance(name, str) and self._load(name) is not None

    def names(self) -> list[str]:
        """The Django tasks run so far in this process."""
        return sorted(self._tasks)

    def get(self, name: str) -> Task[Any, Any]:
        """The task running the Django task ``name``; ``UnknownTask`` if it does not import."""
        task = self._load(name)
        if task is None:
            raise UnknownTask(f"unknown task {name!r}")
        return task

    def _load(self, name: str) -> Task[Any, Any] | None:
        from .backend import TASK_PREFIX, import_task

        if name in self._tasks:
            return self._tasks[name]
        if not name.startswith(TASK_PREFIX):
            return None
        setup_django()
        try:
            django_task = import_task(name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - the job's attempt fails, not the worker
            # ImportError, an error of the module, or its sys.exit() (a missing setting)
            logger.warning("django task %r does not import: %s", name, exc,
                           extra={"task": name, "error": str(exc)})
            return None
        runner = _arun if inspect.iscoroutinefunction(django_task.func) else _run
        self._tasks[name] = Task(self, functools.partial(runner, name), name=name,
                                 queue="default", max_attempts=None, timeout=None)
        return self._tasks[name]

    def run(self, job: Job, queue: Queue | None = None,
            cancel: CancelSignal | None = None) -> Any:
        """Run the Django task ``job`` names (see :meth:`TaskRegistry.run`)."""
        if queue is None:
            raise InvalidArgument("a Django task runs with the worker's Queue")
        return super().run(job, queue, cancel)


def _run(name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the Django task ``name`` (inside ``TaskRegistry.run``: ``current_job()`` set)."""
    from django.db import close_old_connections

    from .backend import BACKEND_HEADER, import_task
    from .compat import TaskContext, task_backends

    task = import_task(name)
    close_old_connections()
    try:
        if task.takes_context:
            job = current_job()
            alias = str(job.headers.get(BACKEND_HEADER, task.backend))
            context = TaskContext(task_result=task_backends[alias].get_result(str(job.id)))
            return task.call(context, *args, **kwargs)
        return task.call(*args, **kwargs)
    except Exception as exc:
        _note_class(exc)
        raise
    finally:
        close_old_connections()


async def _arun(name: str, *args: Any, **kwargs: Any) -> Any:
    """Await the ``async def`` Django task ``name`` on the worker's event loop."""
    from .backend import BACKEND_HEADER, import_task
    from .compat import TaskContext, task_backends

    task = import_task(name)
    try:
        if task.takes_context:
            job = current_job()
            alias = str(job.headers.get(BACKEND_HEADER, task.backend))
            result = await task_backends[alias].aget_result(str(job.id))
            return await task.func(TaskContext(task_result=result), *args, **kwargs)
        return await task.func(*args, **kwargs)
    except Exception as exc:
        _note_class(exc)
        raise


def _note_class(exc: Exception) -> None:
    """Note the module path of ``exc``'s class in its traceback (read by ``get_result``)."""
    from .backend import EXCEPTION_NOTE

    kind = type(exc)
    exc.add_note(f"{EXCEPTION_NOTE}{kind.__module__}.{kind.__qualname__}")


def not_a_task(job: Job) -> None:
    """The Django worker's handler for a job that names no task: the attempt fails."""
    raise InvalidPayload(f"job {job.id} is not a django task job (a Django worker runs "
                         "only tasks enqueued through django.tasks)")


registry = DjangoTaskRegistry()


@dataclass(frozen=True, slots=True)
class WorkerSetup:
    """What a Django worker consumes: the backend's database, queues and durability."""

    db: str
    queues: tuple[str, ...]
    durability: str = "full"


def worker_setup(alias: str = "default", settings_module: str | None = None) -> WorkerSetup:
    """Load Django (``settings_module`` sets ``DJANGO_SETTINGS_MODULE``) and read the task
    backend ``alias``: ``InvalidArgument`` when it is not a persistent_queue backend."""
    if settings_module:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise InvalidArgument("DJANGO_SETTINGS_MODULE is not set (give the settings module)")
    try:
        import django  # noqa: F401
    except ImportError:
        raise MissingDependency("Django is not installed: pip install "
                                "'persistent-queue[django]'") from None
    try:
        setup_django()
    except Exception as exc:  # ImportError, ImproperlyConfigured...
        raise InvalidArgument(f"cannot load the Django settings "
                              f"{os.environ['DJANGO_SETTINGS_MODULE']!r}: "
                              f"{type(exc).__name__}: {exc}") from None
    from .backend import Backend
    from .compat import task_backends

    try:
        backend = task_backends[alias]
    except Exception as exc:  # InvalidTaskBackend: not configured, or does not import
        raise InvalidArgument(f"task backend {alias!r}: {exc}") from None
    if not isinstance(backend, Backend):
        raise InvalidArgument(f"task backend {alias!r} is a {type(backend).__name__}, not "
                              "persistent_queue.contrib.django.Backend")
    return WorkerSetup(db=backend.db, queues=tuple(sorted(backend.queues)),
                       durability=backend.durability)
