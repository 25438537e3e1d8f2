"""Handlers for ``consumer.py --handler tests.e2e.handlers:NAME`` in the process tests."""

from __future__ import annotations

import os
from pathlib import Path

from persistent_queue import Job
from persistent_queue.handlers import sleep


def announce_then_sleep(job: Job) -> None:
    """Create ``$PQ_STARTED_DIR/<job id>`` (the job is in the worker's hands now), then sleep
    as :func:`persistent_queue.handlers.sleep` does."""
    folder = os.environ.get("PQ_STARTED_DIR")
    if folder:
        (Path(folder) / str(job.id)).touch()
    sleep(job)


def started(folder: Path, job_id: int) -> bool:
    """Whether the handler has begun ``job_id`` (see :func:`announce_then_sleep`)."""
    return (folder / str(job_id)).exists()


