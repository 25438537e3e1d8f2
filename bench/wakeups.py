"""Wake-ups on SQLite: ``python -m bench.wakeups [--jobs N] [--rate R] [--idle S]``.

Two measurements, each with a consumer in a process of its own (normal durability):

* **enqueue -> start**: a producer enqueues ``--jobs`` jobs at ``--rate`` jobs/s; the consumer
  waits in ``dequeue(wait=...)`` between them. The latency of a job is the wall-clock time from
  its enqueue's return (committed) to the consumer's claim's return (same host clock); p50,
  p99 and max are printed.
* **idle CPU**: a consumer waits ``--idle`` seconds on an empty queue; the CPU time of its
  process (``getrusage``) over the wait, as a share of one core, and how many times it looked
  at the database while it waited (``wake_counts``, where the backend has them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from persistent_queue import Queue

QUEUE = "wake"


def _checks(q: Queue) -> int | None:
    counts = getattr(getattr(q.backend, "dialect", None), "wake_counts", None)
    return None if counts is None else int(counts.checks)


def _consume(db: str, jobs: int) -> None:
    """The consumer's side of the latency run: print each job's id and claim time."""
    q = Queue(db, durability="normal")
    q.dequeue(QUEUE)  # connection open, schema read: warm before the producer starts
    print("ready", flush=True)
    started: dict[int, float] = {}
    while len(started) < jobs:
        job = q.dequeue(QUEUE, wait=30)
        if job is None:
            break
        started[job.id] = time.time()
        q.ack(job)
    print(json.dumps(started), flush=True)
    q.close()


def _idle(db: str, seconds: float) -> None:
    """Wait ``seconds`` on an empty queue; print the CPU it took and the database looks."""
    q = Queue(db, durability="normal")
    q.dequeue(QUEUE)
    before = resource.getrusage(resource.RUSAGE_SELF)
    checks = _checks(q)
    wall = time.monotonic()
    q.dequeue(QUEUE, wait=seconds)
    wall = time.monotonic() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    looks = None if checks is None else (_checks(q) or 0) - checks
    print(json.dumps({"cpu": cpu, "wall": wall, "looks": looks}), flush=True)
    q.close()


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bench.wakeups", *args],
                            stdout=subprocess.PIPE, text=True)


def latency(workdir: str, jobs: int, rate: float) -> dict[str, float]:
    """Enqueue -> start latencies in milliseconds (p50, p99, max) at ``rate`` jobs/s."""
    db = os.path.join(workdir, "latency.db")
    q = Queue(db, durability="normal")
    q.create_queue(QUEUE)
    consumer = _child("--consumer", db, "--jobs", str(jobs))
    assert consumer.stdout is not None
    if consumer.stdout.readline().strip() != "ready":
        raise RuntimeError("the consumer did not start")
    committed: dict[int, float] = {}
    begin = time.monotonic()
    for i in range(jobs):
        pause = begin + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        job = q.enqueue(QUEUE, {"i": i})
        committed[job.id] = time.time()
    started = {int(k): v for k, v in json.loads(consumer.stdout.readline()).items()}
    consumer.wait(timeout=60)
    q.close()
    waits = sorted((started[i] - committed[i]) * 1000 for i in committed if i in started)
    if len(waits) < jobs:
        raise RuntimeError(f"only {len(waits)} of {jobs} jobs were started")
    return {"p50": statistics.median(waits), "p99": waits[int(len(waits) * 0.99) - 1],
            "max": waits[-1]}


def idle_cpu(workdir: str, seconds: float) -> dict[str, Any]:
    """An idle consumer's CPU share (percent of one core) and its looks at the database."""
    db = os.path.join(workdir, "idle.db")
    Queue(db, durability="normal").create_queue(QUEUE)
    consumer = _child("--idle-db", db, "--seconds", str(seconds))
    out, _ = consumer.communicate(timeout=seconds + 60)
    found = json.loads(out.strip().splitlines()[-1])
    return {"cpu_percent": 100 * found["cpu"] / found["wall"], "looks": found["looks"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--consumer", help=argparse.SUPPRESS)
    parser.add_argument("--idle-db", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consumer:
        _consume(args.consumer, args.jobs)
        return
    if args.idle_db:
        _idle(args.idle_db, args.seconds)
        return
    with tempfile.TemporaryDirectory(prefix="pq-wakeups-") as workdir:
        found = latency(workdir, args.jobs, args.rate)
        idle = idle_cpu(workdir, args.idle)
    looks = "n/a" if idle["looks"] is None else str(idle["looks"])
    print(f"{'wake-ups (SQLite, normal durability)':<44}{'value':>12}")
    print(f"{f'enqueue -> start p50 ({args.rate:g} jobs/s)':<44}{found['p50']:>9.2f} ms")
    print(f"{'enqueue -> start p99':<44}{found['p99']:>9.2f} ms")
    print(f"{'enqueue -> start max':<44}{found['max']:>9.2f} ms")
    print(f"{f'idle consumer CPU over {args.idle:g} s':<44}{idle['cpu_percent']:>10.2f} %")
    print(f"{'idle consumer looks at the database':<44}{looks:>12}")


if __name__ == "__main__":
    main()
