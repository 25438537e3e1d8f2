"""The scheduler process: fires recurring schedules (``pq scheduler``, also
``python -m persistent_queue.scheduler``).

Run one or several (for availability): each tick of each schedule is fired by exactly one of
them, because firing enqueues the job and moves the schedule's next tick in one transaction.

Missed ticks: when no scheduler ran while ticks came due, the first scheduler back enqueues
**one** job for the oldest missed tick (header ``scheduled_for``), counts the rest in the
schedule's ``missed``, and continues with the first tick after now. Nothing is replayed.

A cron expression that runs out of ticks (a year field) fires its last tick and is then
finished (``ScheduleInfo.finished_at``; listed as finished). A schedule that cannot fire (its
time zone is gone, say) is logged and retried; no schedule stops the others, nor the process.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from types import FrameType

from . import config
from .errors import MissingDependency, QueueError
from .logs import setup_logging
from .models import Job
from .queue import Queue
from .storage.postgres.url import mask_url

# Named, so that ``python -m persistent_queue.scheduler`` logs as the package's module too.
logger = logging.getLogger("persistent_queue.scheduler")

#: Seconds between a scheduler process's heartbeats in the worker registry.
HEARTBEAT_INTERVAL = 5.0


def run_due(queue: Queue, *, now: float | None = None) -> list[Job]:
    """Fire every due schedule once (at most one job per schedule and tick); returns the jobs."""
    jobs = queue.run_due_schedules(now)
    for job in jobs:
        logger.info("fired schedule %s into %s as job %d", job.headers.get("schedule"),
                    job.queue, job.id, extra={"job_id": job.id, "queue": job.queue})
    return jobs


def run_scheduler(queue: Queue, stop: threading.Event, *,
                  interval: float = config.SCHEDULER_INTERVAL,
                  worker_id: str | None = None) -> int:
    """Fire due schedules until ``stop`` is set; returns how many jobs were enqueued.

    Sleeps until the next tick or ``interval`` seconds (new schedules are noticed within
    ``interval``). A storage error, or any other failure of a pass, is logged and retried
    after ``interval``: the process outlives it (a crash loop would stop every schedule). With a
    ``worker_id`` the process shows in ``Queue.workers()`` (kind ``scheduler``), its
    ``processed`` count being the jobs it fired.
    """
    fired = 0
    unreported = 0
    next_heartbeat = 0.0
    if worker_id is not None:
        queue.register_worker(worker_id, kind="scheduler")
    while not stop.is_set():
        jobs: list[Job] = []
        try:
            jobs = run_due(queue)
            unreported += len(jobs)
            if worker_id is not None and time.monotonic() >= next_heartbeat:
                queue.heartbeat_worker(worker_id, processed=unreported)
                unreported, next_heartbeat = 0, time.monotonic() + HEARTBEAT_INTERVAL
            upcoming = queue.backend.next_schedule_at()
        except QueueError:
            logger.exception("scheduler pass failed; retrying in %.1fs", interval)
            upcoming = None
        except Exception:  # a bug: log it and go on rather than crash-loop under supervisord
            logger.exception("scheduler pass failed unexpectedly; retrying in %.1fs", interval)
            upcoming = None
        fired += len(jobs)
        pause = interval
        if upcoming is not None:
            pause = min(interval, max(0.0, upcoming - queue.now()))
            if pause == 0 and not jobs:
                pause = interval  # a due tick could not fire (its queue is full): no spinning
        stop.wait(pause)
    if worker_id is not None:
        try:
            queue.heartbeat_worker(worker_id, processed=unreported)
            queue.stop_worker(worker_id)
        except QueueError:
            logger.exception("could not record the scheduler's exit")
    return fired


def serve(db: str, interval: float = config.SCHEDULER_INTERVAL) -> int:
    """Run a scheduler on ``db`` until SIGTERM or SIGINT, logging JSON lines on stdout; the
    process's exit code.

    0 when stopped, 1 when the database cannot be used, 2 when it needs an extra that is not
    installed (a ``postgresql://`` URL without ``[postgres]``).
    """
    setup_logging()
    logging.captureWarnings(True)  # a library's warning is a JSON line too, not raw stderr
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with Queue(db) as queue:
            worker_id = f"scheduler-{socket.gethostname()}-{os.getpid()}"
            logger.info("scheduler %s started on %s", worker_id, mask_url(db),
                        extra={"worker": worker_id})
            fired = run_scheduler(queue, stop, interval=interval, worker_id=worker_id)
    except QueueError as exc:
        logger.error("scheduler cannot run: %s", exc)
        return 2 if isinstance(exc, MissingDependency) else 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info("scheduler stopped after firing %d job(s)", fired)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run a scheduler until SIGTERM or SIGINT (exit 0), or exit 2 on bad arguments."""
    parser = argparse.ArgumentParser(prog="python -m persistent_queue.scheduler",
                                     description="Fire recurring schedules.")
    parser.add_argument("--db", default=config.DEFAULT_DB_PATH, help="database (or PQ_DB)")
    parser.add_argument("--interval", type=float, default=config.SCHEDULER_INTERVAL,
                        help="longest sleep between passes, seconds")
    args = parser.parse_args(argv)
    if not 0 < args.interval <= 3600:
        parser.error("--interval must be between 0 and 3600 seconds")
    return serve(args.db, args.interval)


if __name__ == "__main__":
    raise SystemExit(main())
