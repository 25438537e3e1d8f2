"""The process executor's child side (see :mod:`persistent_queue.executors`), and what
crosses the pipe between a child and the worker.

The worker sends ``("job", seq, job)``, ``("cancel", seq)`` and ``("stop",)``; the child answers
``("ready", pid)`` or ``("failed", reason)`` once, then ``("done", seq, Outcome, exiting)`` per
job. Concurrency in a child: its main thread runs one job at a time; a second thread reads the
pipe, so a cancel reaches the job in hand and a closed pipe (the worker died) ends the child at
once, whatever the job is doing.
"""

from __future__ import annotations

import json
import logging
import multiprocessing.forkserver
import os
import queue as queue_module
import signal
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal, cast

from . import config, errors, tracing, validation
from .errors import InvalidArgument, Retry
from .logs import setup_logging
from .models import Job
from .queue import Queue
from .tasks import encode_result
from .worker_routing import Routed, Router, describe_error, load_app, load_handler

logger = logging.getLogger("persistent_queue.worker")

Kind = Literal["ok", "error", "retry", "timeout", "cancelled", "crashed"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one job's run in the executor ended.

    ``ok``: ``routed`` says which task ran and its result (already checked as JSON). ``error``:
    ``error`` is ``Type: message`` and the traceback; a job naming a task the child does not
    have is an error whose ``routed.unknown`` is set (nothing ran). ``retry``: the handler
    raised :class:`~persistent_queue.Retry`. ``timeout``: the child was killed at the
    timeout. ``cancelled``: the handler stopped at a cancellation point, its child was
    killed after the grace period, or it was cancelled before it started. ``crashed``: the
    child died (``error`` names the exit code or signal).
    """

    kind: Kind
    routed: Routed = Routed()
    error: str | None = None
    retry_delay: float | None = None
    retry_reason: str | None = None
    #: Seconds from sending the job to its end (the child's start-up not included).
    duration: float = 0.0


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """What a child needs to run jobs (pickled once per child, by the worker)."""

    db: str
    queue_options: dict[str, Any]
    handler: str
    app: str | None
    worker_id: str
    max_tasks: int | None
    log: tuple[str, bool, str] | None  # level, JSON lines, stream name
    die_with_parent: bool


def send(conn: Connection, message: tuple[Any, ...]) -> bool:
    """Send ``message``; False if the other end is gone."""
    try:
        conn.send(message)
    except (OSError, ValueError):
        return False
    return True


class _LazyQueue:
    """The child's ``Queue``, opened at the first use (most jobs never need it)."""

    def __init__(self, db: str, options: dict[str, Any]) -> None:
        self._args = (db, options)
        self._queue: Queue | None = None

    def __getattr__(self, name: str) -> Any:
        if self._queue is None:
            db, options = self._args
            self._queue = Queue(db, **options)
        return getattr(self._queue, name)

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()


class _Cancels:
    """The cancel event of the job in hand, set by the pipe reader when the worker asks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current = (0, threading.Event())

    def begin(self, seq: int) -> threading.Event:
        with self._lock:
            self._current = (seq, threading.Event())
            return self._current[1]

    def cancel(self, seq: int) -> None:
        with self._lock:
            if self._current[0] == seq:
                self._current[1].set()


def _ignore_stop(signum: int, frame: object) -> None:
    """The children's SIGINT/SIGTERM handler: the worker decides (a handler, unlike SIG_IGN,
    is not inherited by programs the job starts)."""


def child_main(conn: Connection, spec: ChildSpec) -> None:
    """A child's life: import, say ready, run jobs until told to stop or the pipe closes."""
    os.setpgrp()  # the programs its jobs start are killed with it (executors._kill)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _ignore_stop)
    if spec.die_with_parent:
        _die_with_parent()
    if spec.log is not None:
        level, json_lines, stream = spec.log
        if stream == "stdout":
            setup_logging(level, json_lines=json_lines)
        else:
            logging.basicConfig(stream=sys.stderr, level=level)
    try:
        handler = load_handler(spec.handler)
        registry = load_app(spec.app) if spec.app else None
    except InvalidArgument as exc:
        conn.send(("failed", str(exc)))
        return
    store = _LazyQueue(spec.db, spec.queue_options)
    router = Router(cast(Queue, store), handler, registry, spec.worker_id)
    inbox: queue_module.SimpleQueue[tuple[int, Job, threading.Event] | None] = \
        queue_module.SimpleQueue()
    cancels = _Cancels()
    threading.Thread(target=_read_pipe, args=(conn, inbox, cancels), daemon=True,
                     name="pq-executor-pipe").start()
    conn.send(("ready", os.getpid()))
    done = 0
    try:
        while (item := inbox.get()) is not None:
            seq, job, cancel = item
            outcome = _run_job(router, job, cancel)
            done += 1
            exiting = spec.max_tasks is not None and done >= spec.max_tasks
            if not _send_outcome(conn, seq, outcome, exiting) or exiting:
                return
    finally:
        store.close()


def _die_with_parent() -> None:
    """End with the forkserver, and let the forkserver end with the worker.

    multiprocessing hands every forkserver child the worker's end of the pipe that keeps the
    server alive (for the child's own children); a child stuck in C code holding it would keep
    the server, and so itself, alive after the worker died. The child closes it; on Linux it
    then asks for SIGKILL when the server exits.
    """
    server: Any = multiprocessing.forkserver._forkserver
    alive = getattr(server, "_forkserver_alive_fd", None)
    if alive is not None:
        os.close(alive)
        server._forkserver_alive_fd = None
    if sys.platform.startswith("linux"):
        import ctypes

        parent = os.getppid()
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)


def _read_pipe(conn: Connection, inbox: queue_module.SimpleQueue[Any],
               cancels: _Cancels) -> None:
    """The child's pipe reader: jobs to the main thread, cancels to the job in hand; the
    worker gone (end of file): exit now, whatever runs."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            os._exit(0)
        except Exception:  # a job that cannot be unpickled here: the worker sees a crash
            logger.exception("executor child could not read a message from the worker")
            os._exit(1)
        if message[0] == "job":
            inbox.put((message[1], message[2], cancels.begin(message[1])))
        elif message[0] == "cancel":
            cancels.cancel(message[1])
        else:  # "stop": finish the job in hand, then exit
            inbox.put(None)


def _run_job(router: Router, job: Job, cancel: threading.Event) -> Outcome:
    """Run one job in the child; every value in the outcome is plain data."""
    cancelled = getattr(errors, "JobCancelled", None)  # looked up: it comes with job control
    try:
        with tracing.continued(job):  # the handler's spans: children of its run's span
            routed = router.run(job, cancel=cancel)
        if routed.unknown is not None:
            return Outcome("error", routed=routed, error=routed.unknown_error(router.worker_id))
        if routed.task is not None:  # as stored: JSON decoded, nothing the worker can't load
            routed = Routed(task=routed.task, result=json.loads(encode_result(routed.result)))
    except Retry as exc:
        try:
            delay = None if exc.delay is None else validation.seconds(
                exc.delay, name="Retry delay", maximum=config.MAX_DELAY)
        except InvalidArgument as bad:
            return Outcome("error", error=describe_error(bad))
        return Outcome("retry", retry_delay=delay, retry_reason=str(exc.reason))
    except BaseException as exc:  # SystemExit too: the job fails, the child goes on
        if cancelled is not None and isinstance(exc, cancelled):
            return Outcome("cancelled", error=describe_error(exc))
        return Outcome("error", error=describe_error(exc))
    return Outcome("ok", routed=routed)


def _send_outcome(conn: Connection, seq: int, outcome: Outcome, exiting: bool) -> bool:
    try:
        conn.send(("done", seq, outcome, exiting))
    except (OSError, ValueError):
        return False  # the worker is gone
    except Exception as exc:  # cannot be pickled: say so rather than hang the worker
        text = f"the job's outcome could not be sent to the worker: {describe_error(exc)}"
        return send(conn, ("done", seq, Outcome("error", error=text), exiting))
    return True
