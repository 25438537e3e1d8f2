"""A process killed (SIGKILL) while its threads' enqueues are being group-committed loses no
job whose enqueue had returned: an answer is given only after its group's commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from persistent_queue import Queue
from tests.support import wait_for

PRODUCER = r"""
import sys, threading
from persistent_queue import Queue

q = Queue(sys.argv[1], durability="full")
q.enqueue("q", "start")
lock = threading.Lock()

def produce(thread):
    n = 0
    while True:
        job = q.enqueue("q", [thread, n])
        with lock:
            print(f"{job.id} {thread} {n} {q.backend.dialect._group.groups}", flush=True)
        n += 1

for t in range(6):
    threading.Thread(target=produce, args=(t,), daemon=True).start()
threading.Event().wait()
"""


def test_sigkill_during_group_commits_loses_no_acknowledged_job(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    db = tmp_path / "queue.db"
    child = subprocess.Popen([sys.executable, "-c", PRODUCER, str(db)], env=subprocess_env,
                             stdout=subprocess.PIPE, text=True)
    acknowledged: dict[int, list[int]] = {}
    groups = 0

    def read() -> None:
        nonlocal groups
        assert child.stdout is not None
        for line in child.stdout:
            job_id, thread, n, seen_groups = (int(part) for part in line.split())
            acknowledged[job_id] = [thread, n]
            groups = seen_groups

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for(lambda: len(acknowledged) >= 300 and groups >= 5, timeout=120,
                 message="300 acknowledged enqueues, some of them grouped")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    reader.join(timeout=60)
    assert child.returncode == -signal.SIGKILL

    with Queue(db, durability="full") as q:
        for job_id, payload in acknowledged.items():
            assert q.get_job(job_id).payload == payload
        stored = q.list_jobs("q", limit=10_000)
        assert len({tuple(job.payload) for job in stored if job.payload != "start"}) == len(
            [job for job in stored if job.payload != "start"])  # and none twice
        assert q.check_integrity() == []
