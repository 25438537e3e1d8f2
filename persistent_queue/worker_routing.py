"""Which code runs a claimed job: its task, or the worker's handler.

A job whose payload names a task (``{"task": name, "args": [...], "kwargs": {...}}``, what
``some_task.delay()`` stores) runs that task of the worker's registry (``--app module:attr``,
the tasks declared on that :class:`~persistent_queue.Queue`), with ``current_job()`` set; its
return value is checked as JSON (``config.MAX_RESULT_BYTES`` at most) and stored by the ack.
Any other job runs the worker's handler (``--handler module:callable``), as before tasks.

A task job naming a task the worker does not have (no ``--app``, or an app without it) is not
run: the attempt fails with ``unknown task '<name>' (worker <id> does not have it)``, so
another worker that has the task may take it on a retry; on its last attempt the job is
dead-lettered with the reason ``unknown task '<name>'``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from . import config
from .errors import InvalidArgument
from .models import Job
from .queue import Queue
from .tasks import TaskRegistry, encode_result, task_name

logger = logging.getLogger("persistent_queue.worker")

Handler = Callable[[Job], Any]


def import_object(spec: str, what: str, shape: str = "module:attr") -> Any:
    """The object ``"package.module:attr"`` names; ``InvalidArgument`` with the reason."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise InvalidArgument(f"{what} must look like {shape!r}, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgument(f"cannot import {what} module {module_name!r}: {exc}") from None
    except Exception as exc:  # the module itself failed: a SyntaxError, a RuntimeError...
        raise InvalidArgument(f"cannot import {what} module {module_name!r}: importing it "
                              f"raised {type(exc).__name__}: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise InvalidArgument(f"module {module_name!r} has no attribute {attribute!r}")
    return target


def load_handler(spec: str) -> Handler:
    """Import ``"package.module:callable"``; ``InvalidArgument`` with the reason if it fails."""
    target = import_object(spec, "handler", "module:callable")
    if not callable(target):
        raise InvalidArgument(f"handler {spec!r} is not callable")
    handler: Handler = target
    return handler


def load_app(spec: str) -> TaskRegistry:
    """The tasks of the Queue ``"package.module:attr"`` names (its ``tasks`` registry).

    Importing the module runs its ``@q.task`` declarations. The worker runs the tasks against
    its own Queue (its ``--db``), so the app's Queue object is only a declaration.
    """
    target = import_object(spec, "app")
    registry = target if isinstance(target, TaskRegistry) else getattr(target, "tasks", None)
    if not isinstance(registry, TaskRegistry):
        raise InvalidArgument(f"app {spec!r} is a {type(target).__name__}, not a Queue "
                              "(declare tasks with @q.task on a persistent_queue.Queue)")
    return registry


@dataclass(frozen=True, slots=True)
class Routed:
    """What running one job gave: which task ran (None: the handler) and its result."""

    task: str | None = None
    result: Any = None
    #: Set when the job names a task this worker does not have (nothing ran).
    unknown: str | None = None

    def unknown_error(self, worker_id: str) -> str:
        """The error the failed attempt records."""
        return f"unknown task '{self.unknown}' (worker {worker_id} does not have it)"

    @property
    def dead_letter_reason(self) -> str:
        """The reason of the dead letter when the last attempt found the task unknown."""
        return f"unknown task '{self.unknown}'"


class Router:
    """Runs each job with its task or with the handler (see the module docstring)."""

    def __init__(self, q: Queue, handler: Handler, registry: TaskRegistry | None,
                 worker_id: str) -> None:
        self.q = q
        self.handler = handler
        self.registry = registry
        self.worker_id = worker_id

    def run(self, job: Job, cancel: threading.Event | None = None) -> Routed:
        """Run ``job``; exceptions (``Retry`` included) propagate as the handler's would.

        ``cancel`` is the job's cancel event, which a task sees through
        ``current_job().raise_if_cancelled()``. A result that is not JSON or too large raises
        here, so the attempt fails with that error rather than the ack.

        A handler that forks may see its copy come back here (it returned, or raised
        ``SystemExit`` from ``sys.exit()``): the copy exits at once, with that code, so only
        the worker's own process settles the job.
        """
        owner = os.getpid()
        try:
            routed = self._run(job, cancel)
        except BaseException as exc:
            if os.getpid() != owner:
                _end_forked_copy(exc)
            raise
        if os.getpid() != owner:
            _end_forked_copy(None)
        return routed

    def _run(self, job: Job, cancel: threading.Event | None) -> Routed:
        name = task_name(job)
        if name is None:
            self.handler(job)
            return Routed()
        if self.registry is None or name not in self.registry:
            logger.warning(
                "job %d names task %r, which worker %s does not have", job.id, name,
                self.worker_id,
                extra={"worker": self.worker_id, "job_id": job.id, "task": name,
                       "known_tasks": self.registry.names() if self.registry else []})
            return Routed(task=name, unknown=name)
        value = self.registry.run(job, self.q, cancel=cancel)
        encode_result(value)  # InvalidPayload / PayloadTooLarge: the attempt fails
        return Routed(task=name, result=value)


def _end_forked_copy(exc: BaseException | None) -> NoReturn:
    """End a forked copy of this process that came back from a handler: its exit code is
    ``sys.exit``'s, else 1 after an exception (shown on stderr), else 0."""
    code = 0
    if isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    elif exc is not None:
        traceback.print_exception(exc)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def default_worker_id(kind: str) -> str:
    """``consumer_00@host`` under supervisord (stable across restarts), else ``kind-pid@host``."""
    name = os.environ.get("SUPERVISOR_PROCESS_NAME") or f"{kind}-{os.getpid()}"
    return f"{name}@{socket.gethostname()}"


def describe_error(exc: BaseException) -> str:
    """``Type: message`` followed by the traceback, its end kept if it is too long."""
    try:
        message = str(exc)
    except Exception:  # a __str__ that raises: say so, as the traceback module does
        message = "<exception str() failed>"
    text = f"{type(exc).__name__}: {message}\n\n" + "".join(traceback.format_exception(exc))
    limit = config.MAX_ERROR_CHARS
    return text if len(text) <= limit else text[:200] + "\n...\n" + text[-(limit - 210):]
