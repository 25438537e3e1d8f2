"""The worker's event loop: ``async def`` tasks run as asyncio tasks, many at once.

A :class:`~persistent_queue.worker.Worker` (thread executor) hands each claimed job whose task
is a coroutine function to its :class:`LoopRunner`: one event loop in one dedicated thread per
worker process, running every such job as an asyncio task. A job takes one of the worker's
``concurrency`` slots while it runs, as a job thread does, so ``--concurrency 200`` runs 200
I/O-bound jobs at once on one loop (sync tasks and handlers keep their job threads).

Control, as for a job thread: the worker's control thread renews the leases and reads the
cancellation requests (``current_job().raise_if_cancelled()`` sees them at once); here a job
past its timeout is cancelled (``asyncio.timeout``: the attempt fails with ``timed out after N
s``), and a job whose cancellation was requested is cancelled after the grace period if it has
not stopped by itself (the job is then ``cancelled``). The outcome is settled (ack with the
result, nack, confirm the cancel) on a small thread pool, never on the loop.

A task that blocks the loop (a sync call inside ``async def``) delays every other async job of
the process; the worker logs a loop late by more than ``SLOW_LOOP`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from . import tracing
from .errors import JobCancelled, Retry
from .executor_child import Outcome
from .models import Job
from .tasks import TaskRegistry, encode_result, task_name
from .worker_routing import Routed, describe_error

if TYPE_CHECKING:
    from .worker import Worker, _InHand

logger = logging.getLogger("persistent_queue.worker")

#: Threads that settle finished async jobs (acks are group-committed across them).
SETTLE_THREADS = 4
#: A loop this late (seconds) is logged: an async task blocks it.
SLOW_LOOP = 1.0


def runs_on_loop(registry: TaskRegistry | None, job: Job) -> bool:
    """Whether ``job`` names an ``async def`` task of ``registry``."""
    name = task_name(job)
    return (registry is not None and name is not None and name in registry
            and registry.get(name).is_async)


class LoopRunner:
    """One event loop in a thread, running the async task jobs of ``worker``."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.loop = asyncio.new_event_loop()
        self._settle = ThreadPoolExecutor(SETTLE_THREADS, thread_name_prefix="pq-settle")
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._forced: set[int] = set()  # jobs cancelled after their grace period
        self._stopping = False  # the loop is stopping: its jobs were given back or settled
        self._thread = threading.Thread(target=self._serve, name="pq-event-loop", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._watching = self.loop.create_task(self._watch_lateness())
        self.loop.run_forever()

    async def _watch_lateness(self) -> None:
        while True:
            asked = time.monotonic()
            await asyncio.sleep(0.5)
            late = time.monotonic() - asked - 0.5
            if late > SLOW_LOOP:
                logger.warning("the event loop could not run for %.1f s: an async task blocks "
                               "it (a sync call inside async def)", late,
                               extra={"worker": self.worker.id})

    # -- called from the worker's threads ---------------------------------------------------

    def submit(self, job: Job, entry: _InHand) -> None:
        """Start ``job`` on the loop."""
        self.loop.call_soon_threadsafe(self._start, job, entry)

    def cancel_after_grace(self, job_id: int, grace: float) -> None:
        """A cancellation was requested: cancel the job's asyncio task after ``grace`` s."""
        self.loop.call_soon_threadsafe(self.loop.call_later, grace, self._force_cancel, job_id)

    def stop(self) -> None:
        """Cancel what still runs (its jobs were given back or settled), stop the loop."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.create_task, self._cancel_all())
        self._thread.join(10.0)
        self._settle.shutdown(wait=True)
        if not self._thread.is_alive():
            self.loop.close()

    # -- on the loop ------------------------------------------------------------------------

    async def _cancel_all(self) -> None:
        self._stopping = True
        running = [*self._tasks.values(), self._watching]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self.loop.stop()

    def _start(self, job: Job, entry: _InHand) -> None:
        self._tasks[job.id] = self.loop.create_task(self._run(job, entry),
                                                    context=tracing.context_for(entry.span))

    def _force_cancel(self, job_id: int) -> None:
        task = self._tasks.get(job_id)
        if task is not None and not task.done():
            self._forced.add(job_id)
            task.cancel()

    async def _run(self, job: Job, entry: _InHand) -> None:
        worker = self.worker
        with worker._lock:
            entry.running_since = started = time.monotonic()
        try:
            outcome = await self._outcome(job, entry, started)
            await self.loop.run_in_executor(self._settle, worker._complete, job, entry,
                                            outcome)
        finally:
            self._tasks.pop(job.id, None)
            self._forced.discard(job.id)

    async def _outcome(self, job: Job, entry: _InHand, started: float) -> Outcome:
        if entry.cancel.is_set():
            return Outcome(kind="cancelled")  # cancelled before it started
        registry = self.worker.tasks
        assert registry is not None
        try:
            async with asyncio.timeout(job.timeout) as limit:
                value: Any = await registry.arun(job, self.worker.q, cancel=entry.cancel)
            encode_result(value)  # InvalidPayload / PayloadTooLarge: the attempt fails
        except Retry as exc:
            return Outcome(kind="retry", retry_delay=exc.delay, retry_reason=exc.reason,
                           duration=time.monotonic() - started)
        except JobCancelled:
            return Outcome(kind="cancelled", duration=time.monotonic() - started)
        except asyncio.CancelledError as exc:
            if job.id in self._forced:
                return Outcome(kind="cancelled", duration=time.monotonic() - started)
            if self._stopping:
                raise  # the job was given back
            # Of the task's own making (raised, or a cancelled future awaited): it fails.
            return Outcome(kind="error", error=describe_error(exc),
                           duration=time.monotonic() - started)
        except TimeoutError as exc:
            if limit.expired():
                return Outcome(kind="timeout", error=f"timed out after {job.timeout:g} s",
                               duration=time.monotonic() - started)
            return Outcome(kind="error", error=describe_error(exc),
                           duration=time.monotonic() - started)
        except BaseException as exc:  # SystemExit from a task fails the job, not the loop
            return Outcome(kind="error", error=describe_error(exc),
                           duration=time.monotonic() - started)
        return Outcome(kind="ok", routed=Routed(task=task_name(job), result=value),
                       duration=time.monotonic() - started)
