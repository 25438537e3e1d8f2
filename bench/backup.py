"""Online backup under load: ``python -m bench.backup [--mb N] [--limit S]``.

Seeds a SQLite database of about ``--mb`` MB, starts a producer and two consumers (processes;
tests/e2e/backup_load.py) and copies the live file three ways, each with a deadline of
``--limit`` seconds:

* **one step**: ``sqlite3.Connection.backup(pages=-1)``, what ``pq backup`` does;
* **steps of 5 %**: ``backup(pages=N)``, which restarts when another connection commits
  between two steps (counted: each time the remaining page count goes up);
* **VACUUM INTO**: one read transaction, every table and index rebuilt.

For each: the wall time, restarts, the copy's size, and the consumers' acks per second during
the copy against the same rate measured just before it (how much the copy slows the writers).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from persistent_queue import Queue

LOAD = Path(__file__).resolve().parent.parent / "tests" / "e2e" / "backup_load.py"


def done_count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM jobs WHERE queue = 'load' "
                                "AND state = 'done'").fetchone()[0])
    finally:
        conn.close()


def ack_rate(db: Path, seconds: float) -> float:
    first, start = done_count(db), time.monotonic()
    time.sleep(seconds)
    return (done_count(db) - first) / (time.monotonic() - start)


def one_step(src: sqlite3.Connection, out: Path, stats: dict[str, int]) -> None:
    dst = sqlite3.connect(out)
    try:
        src.backup(dst, pages=-1)
    finally:
        dst.close()


def in_steps(src: sqlite3.Connection, out: Path, stats: dict[str, int]) -> None:
    pages = int(src.execute("PRAGMA page_count").fetchone()[0])
    last = pages

    def progress(_: int, remaining: int, total: int) -> None:
        nonlocal last
        if remaining > last:
            stats["restarts"] += 1
        last = remaining

    dst = sqlite3.connect(out)
    try:
        src.backup(dst, pages=max(1, pages // 20), progress=progress, sleep=0)
    finally:
        dst.close()


def vacuum_into(src: sqlite3.Connection, out: Path, stats: dict[str, int]) -> None:
    src.execute("VACUUM INTO ?", (os.fspath(out),))


def measure(db: Path, name: str,
            copy: Callable[[sqlite3.Connection, Path, dict[str, int]], None],
            limit: float) -> None:
    out = db.with_name(f"{name}.db")
    before = ack_rate(db, 2.0)
    stats = {"restarts": 0}
    src = sqlite3.connect(db, check_same_thread=False)
    started = time.monotonic()
    first = done_count(db)
    worker = threading.Thread(target=copy, args=(src, out, stats), daemon=True)
    worker.start()
    worker.join(limit)
    elapsed = time.monotonic() - started
    during = (done_count(db) - first) / elapsed
    finished = not worker.is_alive()
    size = out.stat().st_size / 1e6 if finished and out.exists() else float("nan")
    print(f"{name:14s} {'done' if finished else 'NOT DONE':8s} {elapsed:7.2f} s  "
          f"restarts {stats['restarts']:4d}  copy {size:6.1f} MB  "
          f"acks/s before {before:7.0f}  during {during:7.0f}", flush=True)
    if finished:  # else the copy goes on in its thread until the process exits
        src.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=150, help="size of the seeded database")
    parser.add_argument("--limit", type=float, default=60.0, help="deadline of each copy (s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pq-bench-backup-") as folder:
        db = Path(folder) / "queue.db"
        with Queue(db, durability="normal") as q:
            for _ in range(args.mb * 2):  # ~0.5 MB per batch of 1,000 jobs of 300 bytes
                q.enqueue_many("seed", [{"pad": "y" * 300}] * 1000)
        print(f"database {db.stat().st_size / 1e6:.0f} MB; a producer and two consumers",
              flush=True)
        procs = [subprocess.Popen([sys.executable, str(LOAD), "producer", str(db)])]
        procs += [subprocess.Popen([sys.executable, str(LOAD), "consumer", str(db),
                                    os.devnull]) for _ in range(2)]
        try:
            time.sleep(2.0)  # let the load settle before the first baseline
            measure(db, "one step", one_step, args.limit)
            measure(db, "VACUUM INTO", vacuum_into, args.limit)
            measure(db, "steps of 5 %", in_steps, args.limit)  # last: it may never end
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait()


if __name__ == "__main__":
    main()
