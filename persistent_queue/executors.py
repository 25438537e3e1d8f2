"""The process executor: each job's handler or task runs in a child process of the worker.

A handler that hangs, holds the GIL in C, leaks memory, segfaults or calls ``os._exit`` then
stops only its child: the worker's threads (claims, heartbeats, cancel polling) keep running,
the child is killed at the job's timeout or after a cancellation's grace period, and a new
child takes its place.

Concurrency: ``size`` slots, one child each. Slot ``n`` is used by one worker thread at a time
(the worker's job thread ``n``), which sends the job (pickled) down the child's pipe and waits
for the answer, the child's death, the timeout or the cancellation, whichever comes first. A
child runs one job at a time in its main thread; a second thread reads the pipe, so a cancel
request reaches the running job (``TaskJob.raise_if_cancelled``) and a closed pipe (the worker
died, even by SIGKILL) ends the child at once. On Linux a child also asks the kernel to kill it
when its parent, the forkserver, goes, which the forkserver does when the worker does: a child
stuck in C code holding its GIL cannot read the pipe.

Start method: ``forkserver``. Measured on 2 cores (``python -m bench.executors``): a child is
replaced in about 12 ms, forked from a server that has imported this package already, against
about 120 ms with ``spawn`` (a fresh interpreter importing it); ``start()`` of 4 slots takes
30-50 ms against 250 ms, plus about 0.18 s once per process for the forkserver itself. Plain
``fork`` is never used: the worker has threads (heartbeat, claims, SQLite's checkpointer),
whose locks a forked child would inherit held. The server is single-threaded and imports no
user code: each child imports the handler and the app itself, with the worker's ``sys.path``
and working directory (so ``tasks:send`` from the project directory imports), and opens its
own ``Queue`` only when a job uses it (``set_progress``, ``dependency_results``).

Signals: each child leads a process group of its own, which the programs its jobs start
join; the forkserver ignores SIGINT and SIGTERM sent to the worker's group (Ctrl-C,
``supervisorctl stop`` with ``stopasgroup``), which reach neither the children nor those
programs: the worker alone decides, and kills a child with SIGKILL to its group, which also
stops one stuck in C code and the programs it started (a worker killed with SIGKILL takes its
children along, not such programs). Children log to the worker's stream in its format
(:func:`persistent_queue.logs.setup_logging`), or warnings and errors to stderr when the
worker has set up no logging.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Protocol, cast

from . import validation
from .errors import InvalidArgument
from .executor_child import ChildSpec, Kind, Outcome, child_main, send
from .logs import JsonFormatter
from .models import Job

__all__ = ["FORKSERVER_PRELOAD", "Kind", "Outcome", "ProcessExecutor"]

logger = logging.getLogger("persistent_queue.worker")

#: Modules the forkserver imports once, so a new child finds them imported: the signal setup,
#: this module (the Queue, storage, routing) and the CLI, which the children of ``pq worker``
#: and ``consumer.py`` import again as the worker's main script.
FORKSERVER_PRELOAD = ("persistent_queue._forkserver_signals", "persistent_queue.executors",
                      "persistent_queue.cli")
#: Longest wait for a new child to import the handler and the app and say it is ready.
START_TIMEOUT = 60.0
#: How often a waiting ``run`` looks at the worker's cancel event (seconds).
CANCEL_POLL = 0.1
#: Longest wait for a killed or exiting child to be reaped.
REAP_TIMEOUT = 5.0


class CancelFlag(Protocol):
    """What ``run`` needs of the worker's cancel event."""

    def is_set(self) -> bool: ...


@dataclass(slots=True)
class _Child:
    process: BaseProcess
    conn: Connection
    ready: bool = False


class _StartFailed(Exception):
    pass


class ProcessExecutor:
    """Runs jobs in ``size`` child processes, one per slot (see the module docstring).

    ``db`` and ``queue_options`` open a child's own ``Queue(db, **queue_options)`` when a job
    needs it; ``handler``/``app`` are ``module:attr`` specs as ``pq worker`` takes them; a child
    exits after ``max_tasks_per_child`` jobs (None: never) and is replaced.
    """

    def __init__(self, *, size: int, db: str, queue_options: dict[str, Any], handler: str,
                 app: str | None, worker_id: str, max_tasks_per_child: int | None = None,
                 start_method: str = "forkserver") -> None:
        validation.integer(size, name="size", minimum=1, maximum=1024)
        if max_tasks_per_child is not None:
            validation.integer(max_tasks_per_child, name="max_tasks_per_child", minimum=1,
                               maximum=2**62)
        if start_method not in ("forkserver", "spawn"):
            raise InvalidArgument(f"start_method must be 'forkserver' or 'spawn', "
                                  f"not {start_method!r}")
        self.size = size
        self.start_method = start_method
        self._ctx = (multiprocessing.get_context("spawn") if start_method == "spawn"
                     else multiprocessing.get_context("forkserver"))
        self._spec = ChildSpec(str(db), dict(queue_options), handler, app, worker_id,
                               max_tasks_per_child, None, start_method == "forkserver")
        self._children: list[_Child | None] = [None] * size
        self._busy = [False] * size
        self._seq = [0] * size
        self._lock = threading.Lock()
        self._started = self._closed = False

    def __enter__(self) -> ProcessExecutor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def pids(self) -> list[int | None]:
        """The process id of each slot's child (None: none running)."""
        return [c.process.pid if c is not None else None for c in self._children]

    def start(self) -> None:
        """Start every slot's child and return once each is ready (has imported the handler
        and the app): about 0.1 s for the forkserver the first time, then a few milliseconds
        per child plus what importing the user's modules takes. ``InvalidArgument`` with the
        child's reason when the handler or the app cannot be imported there."""
        if self._started:
            return
        self._started = True
        if self.start_method == "forkserver":
            self._ctx.set_forkserver_preload(list(FORKSERVER_PRELOAD))
        self._spec = dataclasses.replace(self._spec, log=_log_settings())
        atexit.register(self._at_exit)
        try:
            for slot in range(self.size):
                self._children[slot] = self._spawn(slot)
            for child in self._children:
                self._await_ready(cast(_Child, child))
        except _StartFailed as exc:
            self.shutdown(kill=True)
            raise InvalidArgument(str(exc)) from None

    def run(self, job: Job, *, slot: int, timeout: float | None, cancel: CancelFlag,
            grace: float) -> Outcome:
        """Run ``job`` in slot ``slot``'s child and wait for its end (see :class:`Outcome`).

        After ``timeout`` seconds (None: no limit) the child is killed: ``timeout``. Once
        ``cancel`` is set the child is told (the job sees it at ``raise_if_cancelled``) and is
        killed if it has not finished ``grace`` seconds later: ``cancelled``. A job that ends
        within the grace gives its own outcome: ``cancelled`` when it stopped at a
        cancellation point (``JobCancelled``), else what it did (``ok``, ``error``...). A job
        whose cancel is set before it starts does not run. A child that died or was killed
        is replaced before this returns (started; it gets ready while the worker settles).
        """
        if not 0 <= slot < self.size:
            raise InvalidArgument(f"slot must be 0 to {self.size - 1}, not {slot}")
        if timeout is not None:
            timeout = validation.seconds(timeout, name="timeout", maximum=float("inf"),
                                         allow_zero=False)
        grace = validation.seconds(grace, name="grace", maximum=float("inf"))
        if cancel.is_set():
            return Outcome("cancelled", error="cancelled before it started")
        with self._lock:
            if self._closed or not self._started:
                return Outcome("crashed", error="the executor is not running")
            self._busy[slot] = True
        try:
            return self._run(job, slot, timeout, cancel, grace)
        finally:
            with self._lock:
                self._busy[slot] = False
                left = self._children[slot] if self._closed else None
                if left is not None:  # shut down meanwhile: shutdown left its pipe to us
                    self._children[slot] = None
                    left.conn.close()

    def shutdown(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop every child: gracefully (each finishes its job, then exits; killed after
        ``timeout`` seconds) or, with ``kill``, with SIGKILL at once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            children = [(slot, c) for slot, c in enumerate(self._children) if c is not None]
        atexit.unregister(self._at_exit)
        for _, child in children:
            if kill:
                _kill(child)
            else:
                send(child.conn, ("stop",))
        deadline = time.monotonic() + timeout
        for _, child in children:
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.process.exitcode is None:
                logger.warning("executor child %s did not stop within %g s: killed",
                               child.process.pid, timeout)
                _kill(child)
                child.process.join(REAP_TIMEOUT)
        with self._lock:
            for slot, child in children:
                if not self._busy[slot]:  # a busy slot's thread still reads its pipe
                    self._children[slot] = None
                    child.conn.close()

    # -- the parent's side ----------------------------------------------------------------

    def _at_exit(self) -> None:
        # Before multiprocessing's own exit hook, which would wait for the children.
        self.shutdown(kill=True, timeout=REAP_TIMEOUT)

    def _spawn(self, slot: int) -> _Child:
        ours, theirs = self._ctx.Pipe()
        process = self._ctx.Process(target=child_main, args=(theirs, self._spec),
                                    name=f"pq-executor-{slot}")
        process.start()
        theirs.close()
        return _Child(process, ours)

    def _await_ready(self, child: _Child) -> None:
        if child.ready:
            return
        try:
            if not child.conn.poll(START_TIMEOUT):
                _kill(child)
                raise _StartFailed(f"the worker process was not ready within "
                                   f"{START_TIMEOUT:g} s")
            message = child.conn.recv()
        except (EOFError, OSError):
            raise _StartFailed("the worker process died before it was ready: "
                               + _death(_reap(child))) from None
        if message[0] == "failed":
            raise _StartFailed(message[1])
        child.ready = True

    def _ready_child(self, slot: int) -> _Child:
        child = self._children[slot]
        if child is None or child.process.exitcode is not None:
            if child is not None:
                self._discard(slot, kill=False)
            child = self._children[slot] = self._spawn(slot)
        try:
            self._await_ready(child)
        except _StartFailed:
            self._discard(slot, kill=True)
            raise
        return child

    def _discard(self, slot: int, *, kill: bool, replace: bool = False) -> int | None:
        """Forget slot ``slot``'s child (killed first if asked); its exit code."""
        child = self._children[slot]
        self._children[slot] = None
        code = None
        if child is not None:
            if kill:
                _kill(child)
            code = _reap(child)
            child.conn.close()
        if replace and not self._closed:
            try:
                self._children[slot] = self._spawn(slot)
            except Exception as exc:  # the next run tries again
                logger.error("could not start an executor process: %s", exc)
        return code

    def _run(self, job: Job, slot: int, timeout: float | None, cancel: CancelFlag,
             grace: float) -> Outcome:
        for _attempt in (1, 2):
            try:
                child = self._ready_child(slot)
            except _StartFailed as exc:
                return Outcome("crashed", error=f"the worker process could not start: {exc}")
            self._seq[slot] += 1
            seq = self._seq[slot]
            if send(child.conn, ("job", seq, job)):
                break
            self._discard(slot, kill=True)  # died while idle: the job never reached it
        else:
            return Outcome("crashed", error="the worker process died before the job started")
        started = time.monotonic()
        deadline = started + timeout if timeout is not None else float("inf")
        cancelled_at: float | None = None
        while True:
            limit = deadline if cancelled_at is None else min(deadline, cancelled_at + grace)
            now = time.monotonic()
            if now >= limit and not child.conn.poll(0):
                self._discard(slot, kill=True, replace=True)
                error = (f"timed out after {timeout:g} s" if now >= deadline else
                         f"cancelled; the handler did not stop within {grace:g} s and its "
                         "process was killed")
                kind: Kind = "timeout" if now >= deadline else "cancelled"
                return Outcome(kind, error=error, duration=now - started)
            pause = limit - now if cancelled_at is not None else min(limit - now, CANCEL_POLL)
            if wait([child.conn, child.process.sentinel], max(0.0, pause)):
                break
            if cancelled_at is None and cancel.is_set():
                cancelled_at = time.monotonic()
                send(child.conn, ("cancel", seq))
        duration = time.monotonic() - started
        try:
            message = child.conn.recv() if child.conn.poll(0) else None
        except (EOFError, OSError):
            message = None
        if message is None:
            code = self._discard(slot, kill=True, replace=True)
            return Outcome("crashed", error="worker process died: " + _death(code),
                           duration=duration)
        _, answered, outcome, exiting = message
        assert isinstance(outcome, Outcome)
        assert answered == seq, (answered, seq)
        if exiting:
            self._discard(slot, kill=False, replace=True)
        return dataclasses.replace(outcome, duration=duration)


def _kill(child: _Child) -> None:
    """SIGKILL the child and every program its jobs started that is still in its process
    group (the child leads one of its own)."""
    if child.process.pid is not None and child.process.exitcode is None:
        with contextlib.suppress(OSError):  # not yet its own group, or already gone
            os.killpg(child.process.pid, signal.SIGKILL)
    child.process.kill()


def _reap(child: _Child) -> int | None:
    child.process.join(REAP_TIMEOUT)
    return child.process.exitcode


def _death(code: int | None) -> str:
    """How a child ended: ``killed by signal 11 (SIGSEGV)``, ``exited with code 3``."""
    if code is None:
        return "closed its pipe but did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown"
        return f"killed by signal {-code} ({name})"
    return f"exited with code {code}"


def _log_settings() -> tuple[str, bool, str] | None:
    """The worker's logging, for its children: level, JSON or text, stdout or stderr."""
    root = logging.getLogger()
    for handler in root.handlers:
        stream = getattr(handler, "stream", None)
        if stream is sys.stdout or stream is sys.stderr:
            return (logging.getLevelName(root.level),
                    isinstance(handler.formatter, JsonFormatter),
                    "stdout" if stream is sys.stdout else "stderr")
    return None
