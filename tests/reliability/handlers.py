"""Handlers for ``consumer.py --handler tests.reliability.handlers:NAME``: they write ack records.

``PQ_ACK_DIR`` names the folder of per-process record files (see :mod:`checker`).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from persistent_queue import Job
from tests.reliability.checker import AckRecord, write_record


def _record(job: Job, claimed_at: float) -> None:
    folder = os.environ.get("PQ_ACK_DIR")
    if folder:
        write_record(Path(folder), AckRecord(job.id, job.lease_token or "", claimed_at,
                                             job.lease_expires_at or 0.0, time.time(),
                                             os.getpid()))


def record(job: Job) -> None:
    """Sleep ``payload["seconds"]`` (default 0), or SIGKILL this process when
    ``payload["poison"]``; then write the ack record."""
    claimed_at = time.time()
    payload = job.payload if isinstance(job.payload, dict) else {}
    if payload.get("poison"):
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(float(payload.get("seconds", 0)))
    _record(job, claimed_at)
