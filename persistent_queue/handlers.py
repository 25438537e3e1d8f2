"""Example handlers for ``pq worker --handler persistent_queue.handlers:NAME``.

Each takes the claimed :class:`~persistent_queue.Job`. They double as the workloads of the
demo (``make run``) and of the crash drill (``scripts/simulate_crash.py``).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import time
from typing import Any

from .models import Job

logger = logging.getLogger(__name__)


def _field(job: Job, key: str, default: Any) -> Any:
    return job.payload.get(key, default) if isinstance(job.payload, dict) else default


def echo(job: Job) -> Any:
    """Log the payload and succeed."""
    logger.info("echo %s", job.payload, extra={"job_id": job.id})
    return job.payload


def sleep(job: Job) -> None:
    """Sleep ``payload["seconds"]`` (or a number payload) seconds, default 1: a long job."""
    seconds = job.payload if isinstance(job.payload, int | float) else _field(job, "seconds", 1)
    time.sleep(float(seconds))


def fail_sometimes(job: Job) -> None:
    """Fail a share of attempts: ``payload["fail_rate"]``, else ``PQ_FAIL_RATE``, else 0.3.

    Shows retries with backoff and, for unlucky jobs, the dead-letter table.
    """
    rate = float(_field(job, "fail_rate", os.environ.get("PQ_FAIL_RATE", "0.3")))
    time.sleep(float(_field(job, "seconds", 0.01)))
    if random.random() < rate:
        raise RuntimeError(f"simulated failure of job {job.id} (attempt {job.attempts})")


def drill(job: Job) -> None:
    """The crash drill's workload.

    Sleeps ``payload["seconds"]`` (default 0.05). A payload with ``"poison": true`` kills its
    own process with SIGKILL, as a job that crashes the interpreter would. When
    ``PQ_DRILL_RECORD`` names a file, each completed run appends ``<job id>\\n`` to it, so the
    drill can count side effects that happened more than once.
    """
    if _field(job, "poison", False):
        logger.warning("poison job %d: killing this consumer", job.id, extra={"job_id": job.id})
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(float(_field(job, "seconds", 0.05)))
    record = os.environ.get("PQ_DRILL_RECORD")
    if record:
        fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{job.id}\n".encode())
        finally:
            os.close(fd)
