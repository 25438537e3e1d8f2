"""What the consumer process costs beyond claiming and acking:
``python -m bench.worker_overhead [--jobs N] [--processes P] [--rounds R]``.

The same database (normal durability) and the same jobs are drained twice per round, each by
``--processes`` warm processes: a bare loop (``dequeue(wait=)`` then ``ack``) and
``consumer.py`` with a handler that does nothing (its CSV job log, lease renewal, counts and
logs included). The jobs wait in a paused queue while the processes start; resuming it starts
the clock, the last ack stops it. Printed: jobs/s of each, their ratio (the median over
rounds), the CPU seconds of those processes per 1,000 jobs, and the ratio those give (what
the rates come to where cores are free: on a busy machine, or with processes queueing for
SQLite's write lock, the wall-clock rates say more about the machine than the consumer).
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from persistent_queue import Queue

QUEUE = "work"
ROOT = Path(__file__).resolve().parent.parent
_TICK = os.sysconf("SC_CLK_TCK")


def noop(job: Any) -> None:
    """The consumer's handler: no work at all, so what is measured is the consumer."""


def _bare(db: str) -> None:
    """The bare loop: claim, ack, until stopped."""
    q = Queue(db, durability="normal")
    while True:
        job = q.dequeue(QUEUE, wait=1.0)
        if job is not None:
            q.ack(job)


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _start(kind: str, db: str, logs: str) -> subprocess.Popen[bytes]:
    if kind == "bare":
        command = [sys.executable, "-m", "bench.worker_overhead", "--bare", db]
    else:
        command = [sys.executable, "consumer.py", "--db", db, "--queue", QUEUE,
                   "--handler", "bench.worker_overhead:noop", "--durability", "normal",
                   "--log-dir", logs, "--log-level", "INFO"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)


def _waiting(db: str, count: int) -> bool:
    folder = Path(f"{db}-wake")
    return folder.is_dir() and len(list(folder.glob("*.sock"))) >= count


def drain(kind: str, workdir: str, jobs: int, processes: int) -> dict[str, float]:
    """Jobs/s and CPU s per 1,000 jobs of ``processes`` processes of ``kind`` draining."""
    db = os.path.join(workdir, f"{kind}.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    q = Queue(db, durability="normal")
    q.create_queue(QUEUE)
    q.pause(QUEUE)
    for start in range(0, jobs, 1000):
        q.enqueue_many(QUEUE, [{"n": i} for i in range(start, min(jobs, start + 1000))])
    children = [_start(kind, db, os.path.join(workdir, "logs")) for _ in range(processes)]
    try:
        # Warm: imported, connected, waiting (seen by their sockets; without wake-ups, 5 s).
        begin = time.monotonic()
        while not _waiting(db, processes) and time.monotonic() < begin + 30:
            if time.monotonic() > begin + 5 and not os.path.isdir(f"{db}-wake"):
                break
            time.sleep(0.01)
        time.sleep(0.2)  # past their start-up work (worker registration, first reads)
        cpu = sum(_cpu(child.pid) for child in children)
        started = time.perf_counter()
        q.resume(QUEUE)
        # A plain read: stats() may reap, a write that would hold the drainers up.
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as reader:
            while reader.execute("SELECT count(*) FROM jobs WHERE state = 'done'"
                                 ).fetchone()[0] < jobs:
                time.sleep(0.005)
        elapsed = time.perf_counter() - started
        cpu = sum(_cpu(child.pid) for child in children) - cpu
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        q.close()
    return {"rate": jobs / elapsed, "cpu_per_1000": cpu / jobs * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        _bare(args.bare)
        return
    found: dict[str, list[dict[str, float]]] = {"bare": [], "consumer": []}
    ratios = []
    with tempfile.TemporaryDirectory(prefix="pq-worker-overhead-") as workdir:
        for _ in range(args.rounds):
            for kind in ("bare", "consumer"):
                found[kind].append(drain(kind, workdir, args.jobs, args.processes))
            ratios.append(found["consumer"][-1]["rate"] / found["bare"][-1]["rate"])
    print(f"drain of {args.jobs:,} jobs by {args.processes} processes (SQLite, normal "
          f"durability), median of {args.rounds} rounds")
    print(f"{'':<28}{'jobs/s':>10}{'CPU s / 1,000 jobs':>22}")
    for kind, label in (("bare", "bare claim + ack loop"), ("consumer", "consumer.py")):
        rate = statistics.median(r["rate"] for r in found[kind])
        cpu = statistics.median(r["cpu_per_1000"] for r in found[kind])
        print(f"{label:<28}{rate:>10,.0f}{cpu:>22.3f}")
    cpu_ratio = statistics.median(b["cpu_per_1000"] / c["cpu_per_1000"]
                                  for b, c in zip(found["bare"], found["consumer"], strict=True))
    print(f"{'consumer / bare, jobs/s':<28}{statistics.median(ratios):>9.2f}x")
    print(f"{'consumer / bare, CPU-bound':<28}{cpu_ratio:>9.2f}x  (bare CPU / consumer CPU "
          "a job: the ratio on idle cores)")


if __name__ == "__main__":
    main()
