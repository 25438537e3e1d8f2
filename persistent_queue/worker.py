"""The consumer: claims jobs from its queues and runs a handler on each.

With several queues, a claim takes from the first listed queue that has claimable jobs
(:mod:`persistent_queue.worker_claims`). The main thread claims for every free slot at once
and hands the jobs to the job threads; while the last claim found a backlog (it got all it
asked for), a job thread that settled its job claims the next one itself, on the connection
of that ack and without a handoff (not with ``max_jobs``, whose count the main thread keeps).

A handler is any callable taking a :class:`~persistent_queue.Job`. Returning acks the job;
raising :class:`~persistent_queue.Retry` asks for a retry after its delay; any other exception
nacks the job with the error and its traceback (retried with backoff, dead-lettered when its
attempts are used up).

Executors (``WorkerConfig.executor``):

* ``thread`` (the default): handlers run in this process, one thread per slot. Cheapest, but
  a handler that holds the GIL (a long computation in C, such as a catastrophic regex) also
  stops the heartbeat thread: if that lasts longer than the lease, the lease expires and
  another consumer may start the same job. This worker notices (the late heartbeat and the
  refused ack are logged as a lost lease: the job's outcome is the other consumer's), but
  cannot prevent it. A handler that outlives its timeout or its cancellation's grace period
  cannot be stopped either: the attempt is failed (or the job cancelled) on time, the slot
  goes to a new thread, and the old thread's eventual outcome is discarded and logged.
* ``process``: handlers run in a pool of child processes
  (:class:`~persistent_queue.executors.ProcessExecutor`) while this process claims and
  renews leases; a hung, GIL-holding, crashing or leaking handler is killed at its timeout
  or on cancellation, and its child replaced.

``async def`` tasks (thread executor) run on one event loop per worker process, many at once
(:mod:`persistent_queue.worker_async`), each taking a slot as a job thread does; with the
``process`` executor a child runs an async task on a loop of its own, one job at a time.

Control of a running job: the control thread renews each lease, asks the database about
every ``CONTROL_INTERVAL`` s which jobs in hand have a cancellation requested (the handler
sees it at ``current_job().raise_if_cancelled()`` / ``set_progress()``), and enforces each
job's timeout (``timed out after N s``: retried or dead-lettered as any failure).

Stopping: the first SIGTERM/SIGINT stops claiming and lets the jobs in hand finish and be acked
(warm stop, exit 0); a second one gives the jobs in hand back at once with ``requeue`` and
exits with :data:`EXIT_COLD_STOP` (cold stop). The process executor's children are killed
before their jobs are given back; the thread executor's handlers run on for the moment the
worker takes to exit.
"""

from __future__ import annotations

import dataclasses
import logging
import queue as queue_module
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from . import config, tracing, validation
from .errors import InvalidArgument, InvalidJobState, JobCancelled, LeaseLost, QueueError, Retry
from .executors import Outcome, ProcessExecutor
from .logs import JobLog
from .models import DeadLetter, Job, JobState
from .queue import Queue
from .signals import on_stop_signals
from .tasks import TaskRegistry
from .worker_async import LoopRunner, runs_on_loop
from .worker_claims import Slots, claim
from .worker_routing import (
    Handler,
    Router,
    default_worker_id,
    describe_error,
    load_app,
    load_handler,
)

__all__ = ["EXIT_COLD_STOP", "EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "Handler", "Worker",
           "WorkerConfig", "default_worker_id", "load_app", "load_handler"]

logger = logging.getLogger(__name__)

#: Exit codes of a consumer process.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_COLD_STOP = 0, 1, 2, 3

#: How often a consumer records its heartbeat and counters in the workers table (seconds).
WORKER_HEARTBEAT_INTERVAL = 5.0

#: How often the control thread looks for cancellations and overdue jobs (seconds).
CONTROL_INTERVAL = 0.5

#: Longest wait at exit for the control thread to finish what it is doing (seconds).
CONTROL_JOIN_TIMEOUT = 60.0

#: A control thread that woke this much later than asked was starved (seconds).
STARVED_AFTER = 2.0

Executor = Literal["thread", "process"]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Settings of one consumer process (flags > ``PQ_*`` environment > these defaults)."""

    #: The queue to consume (the first of :attr:`queues` when those are given).
    queue: str | None = None
    handler: str = "persistent_queue.handlers:echo"
    #: Jobs run at once (one thread, or one child process, each).
    concurrency: int = 1
    #: Lease length; None uses the queue's own setting.
    visibility_timeout: float | None = None
    #: Longest a claim waits for work before checking for a stop request (seconds).
    wait: float = 1.0
    #: Directory of ``processed_log.csv`` and ``error_log.txt``; None writes neither.
    log_dir: str | None = "logs"
    #: Exit (warm) after this many jobs; None runs until stopped.
    max_jobs: int | None = None
    worker_id: str | None = None
    #: Queues to consume, in priority order: a claim takes from the first listed queue that
    #: has claimable jobs. Give either this or :attr:`queue`.
    queues: tuple[str, ...] = ()
    #: ``module:attr`` naming a :class:`~persistent_queue.Queue` whose tasks this worker runs.
    app: str | None = None
    #: Where handlers run: ``thread`` (in this process) or ``process`` (child processes that
    #: can be killed at a timeout or on cancellation). See the module docstring.
    executor: Executor = "thread"
    #: ``process`` executor: replace a child after it ran this many jobs (None: never).
    max_tasks_per_child: int | None = None
    #: Seconds a cancelled handler has to stop by itself before it is killed (``process``)
    #: or abandoned (``thread``) and its job marked cancelled.
    cancel_grace: float = 5.0

    def __post_init__(self) -> None:
        queues = tuple(self.queues)
        if self.queue is not None and queues and queues != (self.queue,):
            raise InvalidArgument("give queue or queues, not both")
        if not queues:
            if self.queue is None:
                raise InvalidArgument("a worker needs a queue to consume")
            queues = (self.queue,)
        for name in queues:
            validation.queue_name(name)
        if len(set(queues)) != len(queues):
            raise InvalidArgument(f"a queue is listed twice in {', '.join(queues)}")
        object.__setattr__(self, "queues", queues)
        object.__setattr__(self, "queue", queues[0])
        validation.integer(self.concurrency, name="concurrency", minimum=1, maximum=1024)
        if self.visibility_timeout is not None:
            validation.seconds(self.visibility_timeout, name="visibility_timeout",
                               maximum=config.MAX_VISIBILITY_TIMEOUT, allow_zero=False)
        validation.seconds(self.wait, name="wait", maximum=60.0, allow_zero=False)
        if self.max_jobs is not None:
            validation.integer(self.max_jobs, name="max_jobs", minimum=1, maximum=2**62)
        if self.executor not in ("thread", "process"):
            raise InvalidArgument(f"executor must be 'thread' or 'process', "
                                  f"not {self.executor!r}")
        if self.max_tasks_per_child is not None:
            validation.integer(self.max_tasks_per_child, name="max_tasks_per_child",
                               minimum=1, maximum=2**62)
        validation.seconds(self.cancel_grace, name="cancel_grace", maximum=3600.0)


@dataclass(slots=True)
class _InHand:
    job: Job
    claimed: float = field(default_factory=time.monotonic)
    #: When the handler started (monotonic); None while the job waits for a thread.
    running_since: float | None = None
    lease_lost: bool = False
    settling: bool = False
    #: Set once a cancellation of the job was requested; handlers see it.
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_seen: float | None = None
    #: Thread executor: the handler outlived its timeout or cancellation and was left behind.
    abandoned: bool = False
    #: An async task's job, run on the worker's event loop (which enforces its limits).
    on_loop: bool = False
    #: The run's consumer span when tracing is on (:mod:`persistent_queue.tracing`).
    span: Any = None


class Worker:
    """Runs ``handler`` (or the job's task) on the jobs of its queues until stopped.

    Another thread can watch it through :attr:`stopping`, :attr:`idle` and :attr:`draining`.
    """

    def __init__(self, q: Queue, settings: WorkerConfig, handler: Handler | None = None,
                 tasks: TaskRegistry | None = None) -> None:
        self.q = q
        self.config = settings
        self.handler = handler or load_handler(settings.handler)
        self.id = settings.worker_id or default_worker_id("consumer")
        if tasks is None and settings.app is not None:
            tasks = load_app(settings.app)
        #: The tasks this worker runs (None: only the handler's jobs).
        self.tasks = tasks
        self._router = Router(q, self.handler, tasks, self.id)
        self._executor: ProcessExecutor | None = None
        self._loop_runner: LoopRunner | None = None  # started by the first async task's job
        if settings.executor == "process":
            self._executor = ProcessExecutor(
                size=settings.concurrency, db=str(q.db),
                queue_options={"durability": q.durability}, handler=settings.handler,
                app=settings.app, worker_id=self.id,
                max_tasks_per_child=settings.max_tasks_per_child)
        self.job_log = JobLog(settings.log_dir, worker=self.id) if settings.log_dir else None
        self._in_hand: dict[int, _InHand] = {}
        self._lock = threading.Condition()
        self._slots = Slots(settings.concurrency)
        self._tasks: queue_module.SimpleQueue[Job | None] = queue_module.SimpleQueue()
        self._warm = threading.Event()
        self._cold = threading.Event()
        self._done = threading.Event()
        self._draining = threading.Event()
        self._found_none = False
        #: The last claim took all it asked for: a job thread that settles its job claims the
        #: next itself (:meth:`_claim_following`).
        self._backlog = False
        self._counts = {"processed": 0, "failed": 0}
        self._started_jobs = 0
        self._left_behind = 0  # thread executor: abandoned handlers still running
        self._exit_code = EXIT_OK
        self.processed = 0
        self.failed = 0

    # -- stopping ---------------------------------------------------------------------------

    def request_stop(self, signum: int | None = None) -> None:
        """First call: warm stop (finish the jobs in hand). Second: cold stop (requeue them)."""
        if self._warm.is_set():
            self._cold.set()
        self._warm.set()
        with self._lock:
            self._lock.notify_all()

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return self._warm.is_set()

    @property
    def idle(self) -> bool:
        """Whether the worker holds no job and its last claim found none: it waits for work."""
        with self._lock:
            return self._found_none and not self._in_hand and not self._warm.is_set()

    @property
    def draining(self) -> bool:
        """Whether the worker has stopped claiming and is finishing (or giving back) its jobs."""
        return self._draining.is_set() and not self._done.is_set()

    # -- the main loop ----------------------------------------------------------------------

    def run(self) -> int:
        """Consume until stopped; returns the process exit code."""
        queues = list(self.config.queues)
        if self._executor is not None:
            self._executor.start()
        self.q.register_worker(self.id, kind="consumer", queues=queues)
        logger.info("consumer started", extra={"worker": self.id, "queue": queues[0],
                                                "queues": queues,
                                                "concurrency": self.config.concurrency,
                                                "executor": self.config.executor,
                                                "handler": self.config.handler})
        threads = [self._job_thread(i) for i in range(self.config.concurrency)]
        control = threading.Thread(target=self._control, name="control", daemon=True)
        threads.append(control)
        for thread in threads:
            thread.start()
        code = EXIT_ERROR
        try:
            self._claim_until_stopped()
            self._draining.set()
            code = self._drain()
        finally:
            self._done.set()
            # It may be settling a job past its timeout: done before the caller closes q.
            control.join(CONTROL_JOIN_TIMEOUT)
            for _ in range(self.config.concurrency):
                self._tasks.put(None)
            if self._executor is not None:
                self._executor.shutdown(kill=self._cold.is_set())
            if self._loop_runner is not None:
                self._loop_runner.stop()
            self._flush_counts(stopping=True)
            if self.job_log:
                self.job_log.close()
        code = max(code, self._exit_code) if code != EXIT_COLD_STOP else code
        logger.info("consumer stopped", extra={"worker": self.id, "processed": self.processed,
                                                "failed": self.failed, "exit_code": code})
        return code

    def run_with_signals(self) -> int:
        """:meth:`run` with SIGTERM/SIGINT wired to :meth:`request_stop`."""
        with on_stop_signals(self.request_stop):
            return self.run()

    def _claim_until_stopped(self) -> None:
        queues, limit = self.config.queues, self.config.max_jobs
        while not self._warm.is_set():
            if limit is not None and self._started_jobs >= limit:
                self._warm.set()
                break
            if not self._slots.acquire(timeout=0.2):
                continue
            free = 1
            while free < self.config.concurrency and self._slots.acquire(blocking=False):
                free += 1
            if limit is not None:
                extra = max(0, free - (limit - self._started_jobs))
                for _ in range(extra):
                    self._slots.release()
                free -= extra
            try:
                jobs = claim(self.q, queues, free, wait=self.config.wait,
                             visibility_timeout=self.config.visibility_timeout,
                             worker=self.id)
            except QueueError as exc:
                jobs = []
                self._found_none = False  # failing, not idle
                logger.error("claim failed: %s", exc, extra={"worker": self.id})
                self._warm.wait(1.0)
            else:
                self._found_none = not jobs
            self._backlog = len(jobs) == free
            for _ in range(free - len(jobs)):
                self._slots.release()
            if self._warm.is_set() and jobs:
                for job in jobs:  # claimed while the stop arrived: never started, give back
                    self._give_back(job)
                    self._slots.release()
                break
            for job in jobs:
                if self._hand_over(job):
                    self._tasks.put(job)

    def _hand_over(self, job: Job, *, unless_stopping: bool = False) -> bool | None:
        """Put ``job`` (claimed, its slot taken) in hand: True if a job thread is to run it,
        False if it went to the event loop; None (nothing done) if ``unless_stopping`` and a
        stop was requested."""
        on_loop = self._executor is None and runs_on_loop(self.tasks, job)
        entry = _InHand(job, on_loop=on_loop, span=None)
        with self._lock:
            if unless_stopping and self._warm.is_set():
                return None
            self._in_hand[job.id] = entry
            self._started_jobs += 1
            runner = self._loop_runner
            if on_loop and runner is None:
                runner = self._loop_runner = LoopRunner(self)
        entry.span = tracing.start_run(job, self.id)
        if runner is not None and on_loop:
            runner.submit(job, entry)
        return not on_loop

    def _drain(self) -> int:
        """Warm stop: wait for the jobs in hand; on a cold stop give them back at once."""
        with self._lock:
            if self._in_hand:
                logger.info("finishing %d job(s) in hand before exiting", len(self._in_hand),
                            extra={"worker": self.id})
            while self._in_hand and not self._cold.is_set():
                self._lock.wait(0.5)
            if not self._cold.is_set():
                return EXIT_OK
            entries = [entry for entry in self._in_hand.values() if not entry.settling]
            abandoned = [entry.job for entry in entries]
        if self._executor is not None:  # stopped first: no handler runs a job given back
            self._executor.shutdown(kill=True)
        for job in abandoned:
            self._give_back(job)
        for entry in entries:
            tracing.end_run(entry.span, "given_back")
        logger.warning("cold stop: gave back %d job(s) in hand", len(abandoned),
                       extra={"worker": self.id, "job_ids": [job.id for job in abandoned]})
        return EXIT_COLD_STOP

    def _give_back(self, job: Job) -> None:
        try:
            self.q.requeue(job)
        except QueueError as exc:
            logger.warning("could not give job %d back: %s", job.id, exc,
                           extra={"worker": self.id, "job_id": job.id})

    # -- running jobs -----------------------------------------------------------------------

    def _job_thread(self, slot: int) -> threading.Thread:
        return threading.Thread(target=self._run_jobs, args=(slot,), name=f"job-{slot}",
                                daemon=True)

    def _run_jobs(self, slot: int) -> None:
        job = self._tasks.get()
        while job is not None:
            left_behind = False
            kept, following = False, None
            try:
                left_behind = self._run_one(job, slot)
                if not left_behind:
                    kept, following = self._claim_following()
            except Exception:  # pragma: no cover - a bug here must not kill the thread
                logger.exception("unexpected error settling job %d", job.id,
                                 extra={"worker": self.id, "job_id": job.id})
            finally:
                if not left_behind:
                    with self._lock:
                        self._in_hand.pop(job.id, None)
                        self._lock.notify_all()
                    if not kept:
                        self._slots.release()
            if left_behind:
                return  # a new thread took this one's place when it was abandoned
            job = following if following is not None else self._tasks.get()

    def _claim_following(self) -> tuple[bool, Job | None]:
        """A job thread whose job is settled claims the next job itself while the last claim
        found a backlog: the claim runs on the connection of the ack before it, with no
        handoff to and from the main thread. The settled job is still in hand meanwhile, so
        a warm stop waits for this claim. Returns whether the slot went to a new job, and
        that job if this thread is to run it (not an async task's, which the loop runs)."""
        if not self._backlog or self._warm.is_set() or self.config.max_jobs is not None:
            return False, None
        try:
            jobs = claim(self.q, self.config.queues, 1, wait=0,
                         visibility_timeout=self.config.visibility_timeout, worker=self.id)
        except QueueError:
            return False, None  # the main thread's next claim reports it if it lasts
        if not jobs:
            self._backlog = False
            return False, None
        here = self._hand_over(jobs[0], unless_stopping=True)
        if here is None:  # claimed while the stop arrived: never started, give back
            self._give_back(jobs[0])
            return False, None
        return True, jobs[0] if here else None

    def _run_one(self, job: Job, slot: int) -> bool:
        """Run and settle one job; True if its handler was abandoned while it ran."""
        with self._lock:
            entry = self._in_hand.get(job.id)
            if entry is None:
                return False
            entry.running_since = time.monotonic()
        if entry.cancel.is_set():
            outcome = Outcome(kind="cancelled")  # cancelled while it waited for a thread
        elif self._executor is not None:
            outcome = self._executor.run(tracing.carrying(job, entry.span), slot=slot,
                                         timeout=job.timeout,
                                         cancel=entry.cancel, grace=self.config.cancel_grace)
        else:
            with tracing.attached(entry.span):
                outcome = self._run_here(job, entry)
        with self._lock:
            if entry.abandoned:
                self._left_behind -= 1
                logger.warning(
                    "the abandoned handler of job %d returned after %.1f s; its outcome "
                    "(%s) is discarded", job.id, time.monotonic() - entry.running_since,
                    outcome.kind, extra={"worker": self.id, "job_id": job.id})
                return True
            if self._cold.is_set() or job.id not in self._in_hand:
                return False  # given back by a cold stop
            entry.settling = True
            lost = entry.lease_lost
        self._finish(job, outcome, lost, entry.span)
        return False

    def _complete(self, job: Job, entry: _InHand, outcome: Outcome) -> None:
        """Settle an async task's job (from the event loop's settling threads), free its slot."""
        try:
            with self._lock:
                settle = not self._cold.is_set() and job.id in self._in_hand
                entry.settling = True
                lost = entry.lease_lost
            if settle:
                self._finish(job, outcome, lost, entry.span)
        finally:
            with self._lock:
                self._in_hand.pop(job.id, None)
                self._lock.notify_all()
            self._slots.release()

    def _run_here(self, job: Job, entry: _InHand) -> Outcome:
        """The thread executor: run the job in this thread."""
        started = time.monotonic()
        try:
            routed = self._router.run(job, cancel=entry.cancel)
        except Retry as exc:
            return Outcome(kind="retry", retry_delay=exc.delay, retry_reason=exc.reason,
                           duration=time.monotonic() - started)
        except JobCancelled as exc:
            return Outcome(kind="cancelled", error=describe_error(exc),
                           duration=time.monotonic() - started)
        except BaseException as exc:  # SystemExit from a handler fails the job, not the thread
            return Outcome(kind="error", error=describe_error(exc),
                           duration=time.monotonic() - started)
        return Outcome(kind="ok", routed=routed, duration=time.monotonic() - started)

    def _finish(self, job: Job, outcome: Outcome, lost: bool, span: Any = None) -> None:
        """Settle ``job`` with ``outcome``, then log and count the result (and end ``span``,
        the run's consumer span)."""
        routed = outcome.routed
        result = "lease_lost" if lost else self._settle(job, outcome)
        extra = {"worker": self.id, "job_id": job.id, "queue": job.queue,
                 "attempt": job.attempts, "duration_ms": round(outcome.duration * 1000, 1),
                 "result": result, "task": routed.task}
        if result == "acked":  # processed_log.csv has every job: one line each only in DEBUG
            logger.debug("job %d acked", job.id, extra=extra)
        else:
            logger.warning("job %d %s", job.id, result.replace("_", " "), extra=extra)
        with self._lock:
            key = "processed" if result == "acked" else "failed"
            setattr(self, key, getattr(self, key) + 1)
            self._counts[key] += 1
        if self.job_log:
            self.job_log.processed(job_id=job.id, queue=job.queue, attempt=job.attempts,
                                   duration=outcome.duration, result=result)
            error = self._error_text(job, outcome)
            if error is not None and outcome.kind != "cancelled":
                self.job_log.error(job_id=job.id, queue=job.queue, attempt=job.attempts,
                                   error=error)
        if span is not None:
            tracing.end_run(span, result, self._error_text(job, outcome))

    def _error_text(self, job: Job, outcome: Outcome) -> str | None:
        if outcome.kind == "retry":
            return f"Retry: {outcome.retry_reason}"
        if outcome.routed.unknown is not None:
            return outcome.routed.unknown_error(self.id)
        return outcome.error

    def _settle(self, job: Job, outcome: Outcome) -> str:
        """Ack (with a task's result), nack or confirm a cancellation; the result word."""
        routed = outcome.routed
        try:
            if outcome.kind == "cancelled":
                try:
                    self.q.confirm_cancel(job)
                    return "cancelled"
                except InvalidJobState:  # JobCancelled raised, but no one asked: it failed
                    outcome = dataclasses.replace(outcome, kind="error")
            if outcome.kind == "retry":
                result = self.q.nack(job, error=f"Retry: {outcome.retry_reason}",
                                     delay=outcome.retry_delay)
            elif routed.unknown is not None:
                # Should this be the last attempt, the dead letter says why, not "failed N of N".
                result = self.q.nack(job, error=routed.unknown_error(self.id),
                                     dead_letter_reason=routed.dead_letter_reason)
            elif outcome.kind != "ok":
                result = self.q.nack(job, error=outcome.error)
            elif routed.task is not None:
                self.q.ack(job, result=routed.result)
                return "acked"
            else:
                self.q.ack(job)
                return "acked"
        except LeaseLost as exc:
            if outcome.kind == "ok" and self._acked_by_its_handler(job):
                return "acked"  # in the handler's own transaction: q.ack(job, connection=)
            logger.warning("result of job %d not recorded: %s", job.id, exc,
                           extra={"worker": self.id, "job_id": job.id})
            return "lease_lost"
        except QueueError as exc:
            logger.error("could not settle job %d: %s", job.id, exc,
                         extra={"worker": self.id, "job_id": job.id})
            return "settle_failed"
        if isinstance(result, DeadLetter):
            return "dead_lettered"
        if outcome.kind in ("timeout", "crashed"):
            return "timed_out" if outcome.kind == "timeout" else "crashed"
        return "retry" if outcome.kind == "retry" else "failed"

    def _acked_by_its_handler(self, job: Job) -> bool:
        """Whether the attempt this worker claimed is the one that finished ``job``: its
        handler acked it itself (with ``connection=``, in its own transaction). No other
        consumer claimed it since: that would have counted another attempt."""
        try:
            stored = self.q.get_job(job.id)
        except QueueError:
            return False
        return (stored.state is JobState.DONE and stored.attempts == job.attempts
                and stored.started_at == job.started_at and stored.claimed_by == job.claimed_by)

    # -- control: leases, cancellations, timeouts, heartbeats --------------------------------

    def _lease_lengths(self) -> dict[str, float]:
        """The lease length of each consumed queue."""
        if self.config.visibility_timeout is not None:
            return dict.fromkeys(self.config.queues, self.config.visibility_timeout)
        lengths = {}
        for name in self.config.queues:
            try:
                lengths[name] = self.q.get_queue(name).visibility_timeout
            except QueueError:
                lengths[name] = self.q.default_visibility_timeout
        return lengths

    def _control(self) -> None:
        """The control thread: see the module docstring."""
        leases = self._lease_lengths()
        now = time.monotonic()
        next_extend, next_lengths = now, now + 30.0
        next_worker_beat = now + WORKER_HEARTBEAT_INTERVAL
        while True:
            asleep = time.monotonic()
            interval = max(0.01, min(CONTROL_INTERVAL, next_extend - asleep))
            if self._done.wait(interval):
                return
            now = time.monotonic()
            late = now - asleep - interval
            if late > STARVED_AFTER:
                with self._lock:
                    running = sorted(self._in_hand)
                logger.warning(
                    "the control thread could not run for %.1f s: a handler holding the GIL "
                    "(e.g. a long call into C) stops lease renewal; another consumer may take "
                    "such a job when its lease expires (use --executor process)", late,
                    extra={"worker": self.id, "job_ids": running})
            if now >= next_lengths:
                leases, next_lengths = self._lease_lengths(), now + 30.0
            self._watch_cancellations()
            if self.job_log:
                self.job_log.flush(due_only=True)  # rows of a worker gone idle
            if self._executor is None:
                self._enforce_limits()
            if now >= next_extend:
                self._extend_leases(leases)
                next_extend = time.monotonic() + max(0.05, min(min(leases.values()) / 3, 10.0))
            if now >= next_worker_beat:
                next_worker_beat = now + WORKER_HEARTBEAT_INTERVAL
                self._flush_counts()

    def _watch_cancellations(self) -> None:
        with self._lock:
            ids = [job_id for job_id, e in self._in_hand.items() if e.cancel_seen is None]
        if not ids:
            return
        try:
            requested = self.q.cancel_requests(ids)
        except QueueError as exc:
            logger.error("could not read cancellations: %s", exc, extra={"worker": self.id})
            return
        for job_id in requested:
            self._cancel_requested(job_id)

    def _cancel_requested(self, job_id: int) -> None:
        with self._lock:
            entry = self._in_hand.get(job_id)
            if entry is None or entry.cancel_seen is not None:
                return
            entry.cancel_seen = time.monotonic()
        entry.cancel.set()
        if entry.on_loop and self._loop_runner is not None:
            self._loop_runner.cancel_after_grace(job_id, self.config.cancel_grace)
        logger.info("cancellation of job %d requested", job_id,
                    extra={"worker": self.id, "job_id": job_id})

    def _enforce_limits(self) -> None:
        """Thread executor: fail a job past its timeout, cancel one past its grace period."""
        now = time.monotonic()
        overdue: list[tuple[_InHand, Outcome]] = []
        with self._lock:
            for entry in self._in_hand.values():
                if entry.settling or entry.running_since is None or entry.on_loop:
                    continue
                timeout = entry.job.timeout
                if timeout is not None and now - entry.running_since >= timeout:
                    overdue.append((entry, Outcome(
                        kind="timeout", error=f"timed out after {timeout:g} s",
                        duration=now - entry.running_since)))
                elif (entry.cancel_seen is not None
                      and now - entry.cancel_seen >= self.config.cancel_grace):
                    overdue.append((entry, Outcome(kind="cancelled",
                                                   duration=now - entry.running_since)))
            for entry, _ in overdue:
                entry.settling = entry.abandoned = True
                self._in_hand.pop(entry.job.id, None)
                self._left_behind += 1
            self._lock.notify_all()
        for entry, outcome in overdue:
            logger.warning(
                "job %d: its handler is still running %s; this thread cannot stop it, so the "
                "job is settled now and the handler left behind (use --executor process to "
                "kill such handlers)", entry.job.id,
                "after its timeout" if outcome.kind == "timeout" else "after its cancellation",
                extra={"worker": self.id, "job_id": entry.job.id})
            self._finish(entry.job, outcome, entry.lease_lost, entry.span)
            self._slots.release()
            self._job_thread(-1).start()  # the slot's replacement
        if self._left_behind > self.config.concurrency and not self._warm.is_set():
            logger.error("%d abandoned handlers are still running; stopping this consumer so "
                         "that its restart ends them", self._left_behind,
                         extra={"worker": self.id})
            self._exit_code = EXIT_ERROR
            self.request_stop()

    def _extend_leases(self, leases: dict[str, float]) -> None:
        with self._lock:
            entries = [e for e in self._in_hand.values() if not e.settling and not e.lease_lost]
        for entry in entries:
            lease = leases.get(entry.job.queue, self.q.default_visibility_timeout)
            try:
                entry.job = self.q.extend(entry.job, lease)
            except LeaseLost as exc:
                with self._lock:
                    if entry.settling:
                        continue
                    entry.lease_lost = True
                logger.warning(
                    "lost the lease of job %d while it ran: %s (another consumer may be "
                    "running it now; its outcome here will not be recorded)", entry.job.id, exc,
                    extra={"worker": self.id, "job_id": entry.job.id})
            except QueueError as exc:
                logger.error("could not extend the lease of job %d: %s", entry.job.id, exc,
                             extra={"worker": self.id, "job_id": entry.job.id})
            else:
                if entry.job.cancel_requested:
                    self._cancel_requested(entry.job.id)

    def _flush_counts(self, *, stopping: bool = False) -> None:
        with self._lock:
            counts, self._counts = self._counts, {"processed": 0, "failed": 0}
        try:
            self.q.heartbeat_worker(self.id, **counts)
            if stopping:
                self.q.stop_worker(self.id)
        except QueueError as exc:
            logger.error("could not record the heartbeat: %s", exc, extra={"worker": self.id})
            with self._lock:
                for key, value in counts.items():
                    self._counts[key] += value
