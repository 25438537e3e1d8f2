"""Handlers and tasks the process executor's tests run in its children
(``tests.integration.executor_handlers:NAME``; the app is ``...:app``).

A handler reads what to do from its job's payload: ``{"do": "sleep", "seconds": 600}``.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

from persistent_queue import Job, Queue, Retry, current_job

#: The tasks' declaring Queue (only a declaration: the children run them on their own).
app = Queue(":memory:")

#: What the ``leak`` action keeps, so it stays in the child's memory.
_kept: list[bytes] = []


def _started(job: Job) -> None:
    """Create ``<payload["started"]>`` (the job is running now) when the payload names one."""
    folder = job.payload.get("started") if isinstance(job.payload, dict) else None
    if folder:
        (Path(folder) / str(job.id)).write_text(str(os.getpid()))


def act(job: Job) -> Any:
    """The tests' handler: does ``payload["do"]``."""
    _started(job)
    what = job.payload.get("do", "ok") if isinstance(job.payload, dict) else "ok"
    if what == "ok":
        return None
    if what == "boom":
        raise ValueError(f"boom in job {job.id}")
    if what == "retry":
        raise Retry(delay=7.5, reason="try later")
    if what == "bad_retry":
        raise Retry(delay="soon")  # type: ignore[arg-type]
    if what == "sleep":
        time.sleep(float(job.payload["seconds"]))
    elif what == "regex":  # holds the GIL for minutes: the regex engine never releases it
        re.match(r"(a+)+$", "a" * 32 + "b")
    elif what == "exit":
        os._exit(3)
    elif what == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif what == "null":
        ctypes.string_at(0)
    elif what == "unpicklable":
        error = RuntimeError("holds a lock")
        error.lock = threading.Lock()  # type: ignore[attr-defined]
        raise error
    elif what == "leak":
        _kept.append(os.urandom(1) * int(job.payload["bytes"]))
    elif what == "pid":
        return os.getpid()
    return None


@app.task(name="double")
def double(n: int) -> dict[str, int]:
    """A result: ``{"n": n, "double": 2n, "job": <its id>}``."""
    return {"n": n, "double": 2 * n, "job": current_job().id}


@app.task(name="polite")
def polite(started: str) -> str:
    """Runs until cancelled, checking every 20 ms: the cooperative task."""
    job = current_job()
    Path(started, str(job.id)).write_text(str(os.getpid()))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        job.raise_if_cancelled()
        time.sleep(0.02)
    return "not cancelled"


@app.task(name="progress")
def progress(steps: int) -> int:
    """Stores its progress through the child's own Queue."""
    job = current_job()
    for i in range(steps):
        job.set_progress((i + 1) / steps, message=f"step {i + 1}")
    return steps
