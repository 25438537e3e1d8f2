"""A child process racing its siblings on one PostgreSQL database (see test_postgres_workflows).

``python -m tests.postgres.workflow_child MODE URL BARRIER ...``: announces itself by creating
``BARRIER.ready.<pid>``, waits for ``BARRIER`` to exist so every sibling starts at once, does
its part and prints one JSON line with what it did.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from persistent_queue import Queue, QueueFull

START = 1_700_000_000.0


def _wait_for_start(barrier: Path) -> None:
    Path(f"{barrier}.ready.{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while not barrier.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the start signal never came")
        time.sleep(0.005)


def dedup(q: Queue, keys: int) -> dict[str, object]:
    """Enqueue one job per key; report the id each key got and how many were new."""
    ids: dict[str, int] = {}
    created = 0
    for n in range(keys):
        job = q.enqueue("orders", {"n": n, "pid": os.getpid()}, dedup_key=f"key-{n}")
        ids[f"key-{n}"] = job.id
        created += not job.deduplicated
    return {"ids": ids, "created": created}


def mixed(q: Queue, keys: int) -> dict[str, object]:
    """Publish and enqueue the same keys into the topic's queues, alternating by process."""
    created = 0
    for n in range(keys):
        key = f"key-{n}"
        if (n + os.getpid()) % 2:
            created += sum(not job.deduplicated
                           for job in q.publish("events", {"n": n}, dedup_key=key))
        else:
            for name in ("b-bounded", "a-open"):  # the other order than publish's
                created += not q.enqueue(name, {"n": n}, dedup_key=key).deduplicated
    return {"created": created}


def bounded(q: Queue, attempts: int) -> dict[str, object]:
    """Try ``attempts`` enqueues into the bounded queue; report how many fit."""
    stored = 0
    for n in range(attempts):
        try:
            q.enqueue("bounded", {"n": n, "pid": os.getpid()})
            stored += 1
        except QueueFull:
            pass
    return {"stored": stored}


def schedules(q: Queue, ticks: int) -> dict[str, object]:
    """Run the scheduler over ``ticks`` ticks of the 10 s schedule, as fast as possible."""
    fired = [job.id for tick in range(1, ticks + 1)
             for job in q.run_due_schedules(START + 10 * tick)]
    return {"fired": fired}


def ack(q: Queue, leases_file: Path) -> dict[str, object]:
    """Ack each (id, token) of the file, one transaction per ack."""
    leases = json.loads(leases_file.read_text())
    for job_id, token in leases:
        q.ack(job_id, token)
    return {"acked": len(leases)}


def main() -> None:
    mode, url, barrier_name, arg = sys.argv[1:5]
    barrier = Path(barrier_name)
    with Queue(url, clock=lambda: START, durability="normal") as q:
        q.schema_version()  # connected before the start, so the race is on the work itself
        _wait_for_start(barrier)
        if mode == "dedup":
            result = dedup(q, int(arg))
        elif mode == "mixed":
            result = mixed(q, int(arg))
        elif mode == "bounded":
            result = bounded(q, int(arg))
        elif mode == "schedules":
            result = schedules(q, int(arg))
        elif mode == "ack":
            result = ack(q, Path(arg))
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
