"""The consumer: claims jobs from its queues and runs a handler on each, in threads.

With several queues, a claim takes from the first listed queue that has claimable jobs
(:mod:`persistent_queue.worker_claims`).

A handler is any callable taking a :class:`~persistent_queue.Job`. Returning acks the job;
raising :class:`~persistent_queue.Retry` asks for a retry after its delay; any other exception
nacks the job with the error and its traceback (retried with backoff, dead-lettered when its
attempts are used up).

While a handler runs, a heartbeat thread extends the job's lease, so a long job is not handed
to another consumer. If the lease is lost anyway (the process was frozen longer than the
visibility timeout), the result is not acked and that is logged: another consumer owns the job.

Stopping: the first SIGTERM/SIGINT stops claiming and lets the jobs in hand finish and be acked
(warm stop, exit 0); a second one gives the jobs in hand back at once with ``requeue`` and
exits with :data:`EXIT_COLD_STOP` (cold stop).
"""

from __future__ import annotations

import logging
import queue as queue_module
import threading
import time
from dataclasses import dataclass, field

from . import config, validation
from .errors import InvalidArgument, LeaseLost, QueueError, Retry
from .logs import JobLog
from .models import DeadLetter, Job
from .queue import Queue
from .signals import on_stop_signals
from .tasks import TaskRegistry
from .worker_claims import claim
from .worker_routing import (
    Handler,
    Routed,
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


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Settings of one consumer process (flags > ``PQ_*`` environment > these defaults)."""

    #: The queue to consume (the first of :attr:`queues` when those are given).
    queue: str | None = None
    handler: str = "persistent_queue.handlers:echo"
    #: Jobs run at once (one thread each).
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


@dataclass(slots=True)
class _InHand:
    job: Job
    started: float = field(default_factory=time.monotonic)
    lease_lost: bool = False
    settling: bool = False


class Worker:
    """Runs ``handler`` on the jobs of one queue until stopped.

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
        self.job_log = JobLog(settings.log_dir, worker=self.id) if settings.log_dir else None
        self._in_hand: dict[int, _InHand] = {}
        self._lock = threading.Condition()
        self._slots = threading.Semaphore(settings.concurrency)
        self._tasks: queue_module.SimpleQueue[Job | None] = queue_module.SimpleQueue()
        self._warm = threading.Event()
        self._cold = threading.Event()
        self._done = threading.Event()
        self._draining = threading.Event()
        self._found_none = False
        self._counts = {"processed": 0, "failed": 0}
        self._started_jobs = 0
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
        self.q.register_worker(self.id, kind="consumer", queues=queues)
        logger.info("consumer started", extra={"worker": self.id, "queue": queues[0],
                                                "queues": queues,
                                                "concurrency": self.config.concurrency,
                                                "handler": self.config.handler})
        threads = [threading.Thread(target=self._run_jobs, name=f"job-{i}", daemon=True)
                   for i in range(self.config.concurrency)]
        threads.append(threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True))
        for thread in threads:
            thread.start()
        try:
            self._claim_until_stopped()
            self._draining.set()
            code = self._drain()
        finally:
            self._done.set()
            for _ in range(self.config.concurrency):
                self._tasks.put(None)
            self._flush_counts(stopping=True)
            if self.job_log:
                self.job_log.close()
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
                             visibility_timeout=self.config.visibility_timeout)
            except QueueError as exc:
                jobs = []
                self._found_none = False  # failing, not idle
                logger.error("claim failed: %s", exc, extra={"worker": self.id})
                self._warm.wait(1.0)
            else:
                self._found_none = not jobs
            for _ in range(free - len(jobs)):
                self._slots.release()
            if self._warm.is_set() and jobs:
                for job in jobs:  # claimed while the stop arrived: never started, give back
                    self._give_back(job)
                    self._slots.release()
                break
            for job in jobs:
                with self._lock:
                    self._in_hand[job.id] = _InHand(job)
                self._started_jobs += 1
                self._tasks.put(job)

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
            abandoned = [entry.job for entry in self._in_hand.values() if not entry.settling]
        for job in abandoned:
            self._give_back(job)
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

    def _run_jobs(self) -> None:
        while True:
            job = self._tasks.get()
            if job is None:
                return
            try:
                self._run_one(job)
            except Exception:  # pragma: no cover - a bug here must not kill the thread
                logger.exception("unexpected error settling job %d", job.id,
                                 extra={"worker": self.id, "job_id": job.id})
            finally:
                with self._lock:
                    self._in_hand.pop(job.id, None)
                    self._lock.notify_all()
                self._slots.release()

    def _run_one(self, job: Job) -> None:
        started = time.monotonic()
        error: str | None = None
        retry: Retry | None = None
        routed = Routed()
        try:
            routed = self._router.run(job)
            if routed.unknown is not None:
                error = routed.unknown_error(self.id)
        except Retry as exc:
            retry = exc
        except BaseException as exc:  # SystemExit from a handler fails the job, not the thread
            error = describe_error(exc)
        duration = time.monotonic() - started
        with self._lock:
            entry = self._in_hand.get(job.id)
            if entry is None or self._cold.is_set():
                return  # given back by a cold stop
            entry.settling = True
            lost = entry.lease_lost
        result = self._settle(job, error, retry, lost, routed)
        extra = {"worker": self.id, "job_id": job.id, "queue": job.queue,
                 "attempt": job.attempts, "duration_ms": round(duration * 1000, 1),
                 "result": result, "task": routed.task}
        if result == "acked":
            logger.info("job %d acked", job.id, extra=extra)
        else:
            logger.warning("job %d %s", job.id, result.replace("_", " "), extra=extra)
        with self._lock:
            if result == "acked":
                self.processed += 1
                self._counts["processed"] += 1
            else:
                self.failed += 1
                self._counts["failed"] += 1
        if self.job_log:
            self.job_log.processed(job_id=job.id, queue=job.queue, attempt=job.attempts,
                                   duration=duration, result=result)
            if error is not None or retry is not None:
                text = error if error is not None else f"Retry: {retry}"
                self.job_log.error(job_id=job.id, queue=job.queue, attempt=job.attempts,
                                   error=text)

    def _settle(self, job: Job, error: str | None, retry: Retry | None, lost: bool,
                routed: Routed) -> str:
        """Ack (with a task's result) or nack; the result word for the logs."""
        if lost:
            return "lease_lost"
        try:
            if retry is not None:
                outcome = self.q.nack(job, error=f"Retry: {retry.reason}", delay=retry.delay)
            elif routed.unknown is not None:
                # Should this be the last attempt, the dead letter says why, not "failed N of N".
                outcome = self.q.nack(job, error=error,
                                      dead_letter_reason=routed.dead_letter_reason)
            elif error is not None:
                outcome = self.q.nack(job, error=error)
            elif routed.task is not None:
                self.q.ack(job, result=routed.result)
                return "acked"
            else:
                self.q.ack(job)
                return "acked"
        except LeaseLost as exc:
            logger.warning("result of job %d not recorded: %s", job.id, exc,
                           extra={"worker": self.id, "job_id": job.id})
            return "lease_lost"
        except QueueError as exc:
            logger.error("could not settle job %d: %s", job.id, exc,
                         extra={"worker": self.id, "job_id": job.id})
            return "settle_failed"
        if isinstance(outcome, DeadLetter):
            return "dead_lettered"
        return "retry" if retry is not None else "failed"

    # -- heartbeats -------------------------------------------------------------------------

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

    def _heartbeat(self) -> None:
        next_worker_beat = time.monotonic() + WORKER_HEARTBEAT_INTERVAL
        while not self._done.is_set():
            leases = self._lease_lengths()
            self._done.wait(max(0.05, min(min(leases.values()) / 3, 10.0)))
            if self._done.is_set():
                return
            self._extend_leases(leases)
            if time.monotonic() >= next_worker_beat:
                next_worker_beat = time.monotonic() + WORKER_HEARTBEAT_INTERVAL
                self._flush_counts()

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
                logger.warning("lost the lease of job %d while it ran: %s", entry.job.id, exc,
                               extra={"worker": self.id, "job_id": entry.job.id})
            except QueueError as exc:
                logger.error("could not extend the lease of job %d: %s", entry.job.id, exc,
                             extra={"worker": self.id, "job_id": entry.job.id})

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
