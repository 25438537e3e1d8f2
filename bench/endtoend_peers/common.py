"""What every task app shares: recording a started job, and the producer process.

A record is one fixed-width line (``RECORD_SIZE`` bytes) appended with a single ``write`` to
one file opened ``O_APPEND`` (atomic for regular files, across processes), so the harness
counts records from the file's size alone and reads them once at the end:
``phase seq t_enq_ns t_start_ns worker``.

    python -m bench.endtoend_peers.common MODULE PHASE COUNT [RATE]

stores COUNT jobs (at RATE jobs/s if given, else as fast as it can) through MODULE's
``producer()`` and prints ``{"start": s, "end": s}`` (``time.time()``) as JSON.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from typing import NamedTuple

RECORD_FORMAT = "%02d %08d %019d %019d %010d\n"
RECORD_SIZE = len(RECORD_FORMAT % (0, 0, 0, 0, 0))

_fd: int | None = None
_fd_pid = 0


class Record(NamedTuple):
    phase: int
    seq: int
    t_enq_ns: int
    t_start_ns: int
    worker: int


def record(phase: int, seq: int, t_enq_ns: int) -> None:
    """Note that job ``seq`` of ``phase`` started now, in this worker."""
    global _fd, _fd_pid
    started = time.time_ns()
    pid = os.getpid()
    if _fd is None or _fd_pid != pid:  # a forked child opens its own descriptor
        _fd = os.open(os.environ["BENCH_E2E_OUT"], os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                      0o644)
        _fd_pid = pid
    worker = os.getppid() if os.environ.get("BENCH_E2E_IDENT") == "ppid" else pid
    os.write(_fd, (RECORD_FORMAT % (phase, seq, t_enq_ns, started, worker)).encode())


def count(path: str) -> int:
    """How many records the file holds (complete lines only)."""
    try:
        return os.stat(path).st_size // RECORD_SIZE
    except FileNotFoundError:
        return 0


def read(path: str) -> list[Record]:
    """Every record of the file."""
    try:
        with open(path, encoding="ascii") as f:
            return [Record(*map(int, line.split())) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def produce(module: str, phase: int, jobs: int, rate: float | None) -> dict[str, float]:
    """Store ``jobs`` jobs through ``module``'s producer; at ``rate`` jobs/s when given."""
    send, close = importlib.import_module(module).producer()
    try:
        send(phase, -1 % 10**8, time.time_ns())  # connects, creates queues: not timed
        start = time.time()
        for seq in range(jobs):
            if rate:
                delay = start + seq / rate - time.time()
                if delay > 0:
                    time.sleep(delay)  # pacing the producer, not waiting for a result
            send(phase, seq, time.time_ns())
        end = time.time()
    finally:
        close()
    return {"start": start, "end": end}


if __name__ == "__main__":
    rate = float(sys.argv[4]) if len(sys.argv) > 4 else None
    print(json.dumps(produce(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), rate)))
