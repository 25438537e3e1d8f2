"""Hostile handlers for ``pq worker --handler tests.e2e.hostile_handlers:act`` in
``test_job_control_hostile_processes.py``.

The job's payload says what to do (``{"do": "fork_exit"}``); every run appends ``<job id>
<pid>`` to ``$HOSTILE_DIR/started`` first, and to ``finished`` when it returns.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from persistent_queue import Job, JobState, Queue
from persistent_queue.errors import JobCancelled


class UnprintableError(Exception):
    """An exception whose message cannot be shown."""

    def __str__(self) -> str:
        raise RuntimeError("cannot be shown")


def folder() -> Path:
    return Path(os.environ["HOSTILE_DIR"])


def note(name: str, job: Job) -> None:
    """Append ``<job id> <pid>`` to ``$HOSTILE_DIR/<name>``."""
    with open(folder() / name, "a") as out:
        out.write(f"{job.id} {os.getpid()}\n")


def act(job: Job) -> None:
    """Do ``job.payload["do"]``."""
    note("started", job)
    what = job.payload.get("do", "ok") if isinstance(job.payload, dict) else "ok"
    if what == "fork_exit":  # a forked helper that ends with sys.exit(), as scripts do
        pid = os.fork()
        if pid == 0:
            note("forked", job)
            sys.exit(0)
        os.waitpid(pid, 0)
    elif what == "fork_return":  # a forked helper that returns from the handler
        pid = os.fork()
        if pid == 0:
            note("forked", job)
            return
        os.waitpid(pid, 0)
    elif what == "spawn":  # a program started by the handler, then a hang
        program = subprocess.Popen(["sleep", "600"])  # noqa: S607
        (folder() / f"spawned-{job.id}").write_text(str(program.pid))
        time.sleep(600)
    elif what == "program":  # a program the job waits for; it writes its pid first
        script = f'echo $$ > "$1"; exec sleep {float(job.payload["seconds"])}'
        subprocess.run(["sh", "-c", script, "sh", str(folder() / f"program-{job.id}")],  # noqa: S607
                       check=True)
    elif what == "sleep":
        time.sleep(float(job.payload["seconds"]))
    elif what == "cancelled":  # JobCancelled, though no one asked
        raise JobCancelled("nobody asked", job_id=job.id)
    elif what == "unprintable":
        raise UnprintableError
    elif what == "watch":
        watch(job)
    note("finished", job)


def watch(job: Job) -> None:
    """Run until killed; note ``given_back`` if the job stops being this run's claim while
    it still runs (another consumer could start it now)."""
    q = Queue(os.environ["HOSTILE_DB"], durability="normal")
    while True:
        now = q.get_job(job.id)
        if now is None or now.state is not JobState.LEASED or now.started_at != job.started_at:
            note("given_back", job)
            time.sleep(600)
        time.sleep(0.001)
