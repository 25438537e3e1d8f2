"""asyncio: :class:`AsyncQueue`, the :class:`~persistent_queue.Queue`'s methods as coroutines.

::

    async with AsyncQueue("data/queue.db") as aq:       # or a postgresql:// URL
        await aq.enqueue("emails", {"to": "a@b.c"})
        job = await aq.dequeue("emails", wait=10)     # never blocks the event loop
        await aq.ack(job)

Concurrency model: an ``AsyncQueue`` wraps a ``Queue``. Every database call runs on the
AsyncQueue's own small thread pool (``threads``, 4 by default; never asyncio's default
executor), so the event loop only awaits. Waits hold no thread: ``dequeue(wait=)`` and
``result(timeout=)`` park an asyncio future, and one watcher thread per AsyncQueue observes
commits (the backend's ``wait_for_change``: SQLite's ``PRAGMA data_version``, PostgreSQL's
``LISTEN`` on the watcher's connection) and wakes every parked future at each one. Waiters of
one queue then share one read of whether it has claimable work, so a thousand idle long polls
cost one read per commit, not a thousand. The watcher runs only while something waits.

Methods that need the caller's thread (``atomic()``, ``enqueue(connection=)`` with a sqlite3
connection, which is bound to its thread) are not for an AsyncQueue: use the ``Queue``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Concatenate, ParamSpec, TypeVar

from . import config, validation
from .errors import InvalidArgument, QueueError, ResultTimeout
from .models import JSON, Job
from .queue import Queue
from .storage import Backend

__all__ = ["ASYNC_THREADS", "AsyncQueue", "async_queue_for"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: Threads of an AsyncQueue's pool (database calls at once) by default.
ASYNC_THREADS = 4
#: Longest single sleep of the watcher, so it notices promptly that nothing waits any more.
_WATCH_SLICE = 0.5
#: Longest a result wait sleeps between looks (PostgreSQL announces only acks with a result).
_RESULT_RECHECK = 1.0


class _Watcher:
    """One thread that observes commits and wakes the asyncio futures parked on them."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        self._lock = threading.Lock()
        self._parked: set[asyncio.Future[None]] = set()
        self._wanted = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        #: Bumped at each commit seen: a read started after it reflects that commit.
        self.generation = 0

    def park(self) -> asyncio.Future[None]:
        """A future done at the next commit seen after this call."""
        future = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._closed:
                raise InvalidArgument("this AsyncQueue is closed")
            self._parked.add(future)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pq-async-watcher",
                                                daemon=True)
                self._thread.start()
        self._wanted.set()
        return future

    def unpark(self, future: asyncio.Future[None]) -> None:
        with self._lock:
            self._parked.discard(future)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wanted.set()
        if thread is not None:
            thread.join()
        self._wake()  # the waits parked now look again, and find the AsyncQueue closed

    def _run(self) -> None:
        backend, interval = self._queue.backend, self._queue.poll_interval
        while True:
            with self._lock:
                if self._closed:
                    return
                idle = not self._parked
            if idle:
                self._wanted.wait(_WATCH_SLICE)
                self._wanted.clear()
                continue
            try:
                changed = backend.wait_for_change(_WATCH_SLICE, interval, None)
            except Exception as exc:  # the watcher must outlive any failure
                with self._lock:
                    if not self._parked:  # the last waiter left (its Queue may be closed)
                        continue
                logger.error("the AsyncQueue watcher could not wait for commits: %s", exc,
                             exc_info=not isinstance(exc, QueueError))
                changed = True  # wake the waiters: each looks again (and meets the error)
                time.sleep(_WATCH_SLICE)
            if changed:
                self._wake()

    def _wake(self) -> None:
        with self._lock:
            self.generation += 1
            parked, self._parked = self._parked, set()
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for future in parked:
            by_loop.setdefault(future.get_loop(), []).append(future)
        for loop, futures in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, futures)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                pass


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


def _in_pool(method: Callable[Concatenate[Queue, P], R]
             ) -> Callable[Concatenate[AsyncQueue, P], Coroutine[Any, Any, R]]:
    """``Queue.<method>`` as a coroutine method of AsyncQueue, run on its thread pool."""

    @functools.wraps(method)
    async def call(self: AsyncQueue, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._run(functools.partial(method, self.queue, *args, **kwargs))

    call.__doc__ = (f"``await`` :meth:`Queue.{method.__name__}` (run on the AsyncQueue's "
                    f"thread pool).\n\n{method.__doc__ or ''}")
    return call


class AsyncQueue:
    """A :class:`~persistent_queue.Queue` for asyncio: its methods as coroutines.

    Cancelling a ``dequeue`` (``asyncio.wait_for``, a client gone) is safe: a job claimed
    while it was cancelled is given back at once.

    Args:
        db: as ``Queue`` takes it (a path, ``sqlite:///path``, a PostgreSQL URL, a backend),
            or a ``Queue`` to wrap (then ``aclose`` leaves it open).
        threads: threads of the pool that runs the database calls.
        **options: ``Queue``'s options (``durability``, ``visibility_timeout``, ``clock``...).

    ``dequeue``/``dequeue_many`` with ``wait=`` and ``result`` with ``timeout=`` wait without
    holding a thread (see the module docstring). Use ``async with AsyncQueue(...) as aq`` or
    ``await aq.aclose()``.
    """

    def __init__(self, db: str | os.PathLike[str] | Backend | Queue = config.DEFAULT_DB_PATH,
                 *, threads: int = ASYNC_THREADS, **options: Any) -> None:
        validation.integer(threads, name="threads", minimum=1, maximum=256)
        if isinstance(db, Queue):
            if options:
                raise InvalidArgument("options belong to the Queue given, not to AsyncQueue")
            self.queue, self._owns_queue = db, False
        else:
            self.queue, self._owns_queue = Queue(db, **options), True
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pq-async")
        self._watcher = _Watcher(self.queue)
        self._probes: dict[str, tuple[int, asyncio.Future[tuple[bool, float | None]]]] = {}
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop the watcher and the pool, and close the Queue if this AsyncQueue opened it."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def shut_down() -> None:  # on a thread of its own: never asyncio's default executor
            try:
                self._shutdown()
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                loop.call_soon_threadsafe(done.set_exception, exc)
            else:
                loop.call_soon_threadsafe(done.set_result, None)

        threading.Thread(target=shut_down, name="pq-async-close", daemon=True).start()
        await done

    def _shutdown(self) -> None:
        self._watcher.close()
        self._pool.shutdown(wait=True)
        if self._owns_queue:
            self.queue.close()

    async def __aenter__(self) -> AsyncQueue:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Async{self.queue!r}"

    @property
    def db(self) -> str | os.PathLike[str]:
        """The database (as ``Queue.db``)."""
        return self.queue.db

    async def _run(self, call: Callable[[], R]) -> R:
        return await asyncio.wrap_future(self._submit(call))

    def _submit(self, call: Callable[[], R]) -> Future[R]:
        """``call`` on the pool: every database call of the AsyncQueue goes through here, in
        the caller's context (its context variables: the current tracing span, for one)."""
        if self._closed:
            raise InvalidArgument("this AsyncQueue is closed")
        return self._pool.submit(contextvars.copy_context().run, call)

    # -- waiting ----------------------------------------------------------------------------

    async def dequeue(self, queue: str, *, visibility_timeout: float | None = None,
                      wait: float = 0, worker: str | None = None) -> Job | None:
        """Claim the next job, or None if none is ready within ``wait`` s (see
        :meth:`Queue.dequeue`). Waiting parks a future woken by commits: no thread is held."""
        jobs = await self.dequeue_many(queue, 1, visibility_timeout=visibility_timeout,
                                       wait=wait, worker=worker)
        return jobs[0] if jobs else None

    async def dequeue_many(self, queue: str, count: int, *,
                           visibility_timeout: float | None = None, wait: float = 0,
                           worker: str | None = None) -> list[Job]:
        """Claim up to ``count`` jobs, waiting up to ``wait`` s (see :meth:`dequeue`)."""
        wait = validation.seconds(wait, name="wait", maximum=config.MAX_WAIT)
        claim = functools.partial(self.queue.dequeue_many, queue, count,
                                  visibility_timeout=visibility_timeout, wait=0, worker=worker)
        deadline = time.monotonic() + wait
        while True:
            changed = self._watcher.park() if wait else None  # first: no commit is missed
            try:
                jobs = await self._claim(claim)
                if jobs or changed is None:
                    return jobs
                if not await self._until_claimable(queue, changed, deadline):
                    return []
            finally:
                if changed is not None:
                    self._watcher.unpark(changed)

    async def _claim(self, claim: Callable[[], list[Job]]) -> list[Job]:
        """Run ``claim`` on the pool. Cancelled before the pool started it, it never runs (so
        abandoned claims never pile up in the pool under many cancelled dequeues); cancelled
        while it runs, the jobs it claims are given back (``requeue``), so a cancelled
        ``dequeue`` never strands a job until its lease ends."""
        call = self._submit(claim)
        future = asyncio.wrap_future(call)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if not call.cancel():  # already running (or done): its jobs go back
                future.add_done_callback(self._give_back)
            raise

    def _give_back(self, future: asyncio.Future[list[Job]]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        for job in future.result():
            try:
                self._pool.submit(self._requeue_quietly, job)
            except RuntimeError:  # the pool is shut down: the lease will expire
                logger.warning("could not give back job %d after its dequeue was cancelled",
                               job.id, extra={"job_id": job.id})

    def _requeue_quietly(self, job: Job) -> None:
        try:
            self.queue.requeue(job)
        except QueueError as exc:
            logger.warning("could not give back job %d after its dequeue was cancelled: %s",
                           job.id, exc, extra={"job_id": job.id})

    async def _until_claimable(self, queue: str, parked: asyncio.Future[None],
                               deadline: float) -> bool:
        """Sleep until a claim from ``queue`` may succeed; False once the deadline passed.

        Just after a failed claim, only the time something comes due (or a commit) ends the
        sleep: a job that is due yet unclaimable (a paused queue) must not make us spin."""
        woken = False
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                due, wake_at = await self._outlook(queue)
                if due and woken:
                    return True
                timeout = remaining if wake_at is None else min(remaining,
                                                                 wake_at - time.monotonic())
                if timeout <= 0:
                    return True
                await asyncio.wait([parked], timeout=timeout)
                if not parked.done():
                    return True  # something came due (a delayed job, a lease end, a slot)
                woken = True
                parked = self._watcher.park()  # before the next look: a later commit wakes us
        finally:
            self._watcher.unpark(parked)

    async def _outlook(self, queue: str) -> tuple[bool, float | None]:
        """Whether ``queue`` has work due now, and when to look again without a commit
        (monotonic; None: only at a commit). One look is shared by the waiters of a queue
        until the next commit or its wake-up time."""
        generation, now = self._watcher.generation, time.monotonic()
        probe = self._probes.get(queue)
        if (probe is not None and probe[0] == generation
                and probe[1].get_loop() is asyncio.get_running_loop()):
            future = probe[1]
            if not future.done():
                return await asyncio.shield(future)
            if future.exception() is None:
                due, wake_at = future.result()
                if wake_at is None or wake_at > now:
                    return due, wake_at
        future = asyncio.ensure_future(self._run(functools.partial(self._look, queue)))
        self._probes[queue] = (generation, future)
        return await asyncio.shield(future)

    def _look(self, queue: str) -> tuple[bool, float | None]:
        """What :meth:`_outlook` shares, read on a pool thread (no claim: on PostgreSQL
        ``has_claimable`` is always true, the claim itself being the cheap look)."""
        backend, now, started = self.queue.backend, self.queue.now(), time.monotonic()
        self.queue._maybe_reap(now)  # an expired last lease may hold a group
        flow = backend.flow_outlook(queue, now)
        if flow is not None:  # a queue with limits: wake for them, and look every so often
            claimable, wake_at = flow
            wait = config.FLOW_RECHECK if claimable or wake_at is None else min(
                max(wake_at - now, 0.001), config.FLOW_RECHECK)
            return claimable, started + wait
        next_at = backend.next_available_at(queue)
        if next_at is None:
            return False, None
        # Something becomes due (a delayed job, an expiring lease): wake for it, but never
        # spin when it is already due yet unclaimable (a paused queue).
        return next_at <= now, started + max(next_at - now, 20 * self.queue.poll_interval)

    async def result(self, job_id: int, timeout: float | None = None) -> JSON:
        """The stored result of job ``job_id``, waiting until it is done (see
        :meth:`Queue.result`: ``TaskFailed``, ``ResultTimeout``, ``JobNotFound``). Waiting
        parks a future woken by commits: no thread is held."""
        validation.integer(job_id, name="job id", minimum=1, maximum=2**63 - 1)
        wait = None if timeout is None else validation.seconds(
            timeout, name="timeout", maximum=float("inf"))
        deadline = None if wait is None else time.monotonic() + wait
        look = functools.partial(self.queue.result, job_id, timeout=0)
        while True:
            changed = self._watcher.park()  # first: no commit is missed
            try:
                try:
                    return await self._run(look)
                except ResultTimeout:
                    remaining = (_RESULT_RECHECK if deadline is None
                                 else deadline - time.monotonic())
                    if remaining <= 0:
                        job = await self.get_job(job_id)
                        raise ResultTimeout(f"job {job_id} is {job.state.value}, not done, "
                                            f"after {wait:g}s") from None
                await asyncio.wait([changed], timeout=min(remaining, _RESULT_RECHECK))
            finally:
                self._watcher.unpark(changed)

    # -- everything else: the Queue's method on the pool ------------------------------------

    enqueue = _in_pool(Queue.enqueue)
    enqueue_many = _in_pool(Queue.enqueue_many)
    ack = _in_pool(Queue.ack)
    ack_many = _in_pool(Queue.ack_many)
    nack = _in_pool(Queue.nack)
    extend = _in_pool(Queue.extend)
    requeue = _in_pool(Queue.requeue)
    set_progress = _in_pool(Queue.set_progress)
    confirm_cancel = _in_pool(Queue.confirm_cancel)
    cancel_requests = _in_pool(Queue.cancel_requests)
    move_to_dead_letter_queue = _in_pool(Queue.move_to_dead_letter_queue)
    cancel = _in_pool(Queue.cancel)
    get_job = _in_pool(Queue.get_job)
    list_jobs = _in_pool(Queue.list_jobs)
    history = _in_pool(Queue.history)
    stats = _in_pool(Queue.stats)
    throughput = _in_pool(Queue.throughput)
    alerts = _in_pool(Queue.alerts)
    running_jobs = _in_pool(Queue.running_jobs)
    create_queue = _in_pool(Queue.create_queue)
    update_queue = _in_pool(Queue.update_queue)
    get_queue = _in_pool(Queue.get_queue)
    list_queues = _in_pool(Queue.list_queues)
    delete_queue = _in_pool(Queue.delete_queue)
    pause = _in_pool(Queue.pause)
    resume = _in_pool(Queue.resume)
    purge = _in_pool(Queue.purge)
    cleanup = _in_pool(Queue.cleanup)
    delete_job = _in_pool(Queue.delete_job)
    retry_now = _in_pool(Queue.retry_now)
    dead_letters = _in_pool(Queue.dead_letters)
    redrive = _in_pool(Queue.redrive)
    publish = _in_pool(Queue.publish)
    dependency_results = _in_pool(Queue.dependency_results)
    reap = _in_pool(Queue.reap)
    get_value = _in_pool(Queue.get_value)
    set_value = _in_pool(Queue.set_value)


_for_queue: weakref.WeakKeyDictionary[Queue, AsyncQueue] = weakref.WeakKeyDictionary()
_for_queue_lock = threading.Lock()


def async_queue_for(queue: Queue) -> AsyncQueue:
    """The AsyncQueue wrapping ``queue`` (one per Queue, made on first use; what
    ``task.adelay`` and ``handle.aresult`` use). Its pool and watcher threads are daemons
    that idle while nothing waits."""
    with _for_queue_lock:
        wrapper = _for_queue.get(queue)
        if wrapper is None:
            wrapper = _for_queue[queue] = AsyncQueue(queue)
        return wrapper


def _parked_count(aq: AsyncQueue) -> int:
    """How many futures wait on the watcher (for tests)."""
    return len(aq._watcher._parked)

