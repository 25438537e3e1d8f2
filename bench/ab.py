"""Before/after in one process: ``python -m bench.ab BASE_DIR WORKLOAD [--jobs N] [--rounds R]``.

BASE_DIR holds an older copy of the package under the name ``pq_base``::

    mkdir /tmp/ab && git archive COMMIT persistent_queue | tar -x -C /tmp/ab
    mv /tmp/ab/persistent_queue /tmp/ab/pq_base

Each round runs the workload on the old tree, this tree and raw SQLite (normal durability
unless ``--durability full``; one fresh database each, reused across rounds), alternating the
order, and times it in CPU seconds of the whole process (``time.process_time``), which a loaded
machine moves less than the wall clock, or with ``--clock wall`` in wall-clock seconds (for
work moved to another thread or to waiting on the disk, which CPU seconds do not show). The
medians of the per-round ratios are printed: rounds measured moments apart share the load.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import persistent_queue
from persistent_queue.storage.sqlite.checkpointer import (
    BACKSTOP_PAGES,
    BUSY_WAL_LIMIT,
    Checkpointer,
)

from .systems import PROJECT_QUEUE, make_payload, open_system

WORKLOADS = ("enqueue", "claim_ack", "batch")


def _run_queue(q: Any, work: str, payloads: list[str], clock: Any) -> float:
    if work != "enqueue":
        for start in range(0, len(payloads), 1000):
            q.enqueue_many(PROJECT_QUEUE, payloads[start:start + 1000])
    started = clock()
    if work == "enqueue":
        for payload in payloads:
            q.enqueue(PROJECT_QUEUE, payload)
    elif work == "claim_ack":
        while (job := q.dequeue(PROJECT_QUEUE)) is not None:
            q.ack(job)
    else:
        while batch := q.dequeue_many(PROJECT_QUEUE, 100):
            q.ack_many(batch)
    elapsed = clock() - started
    if work == "enqueue":  # drained untimed, so every round starts from the same state
        while batch := q.dequeue_many(PROJECT_QUEUE, 1000):
            q.ack_many(batch)
    return elapsed


def _run_raw(raw: Any, work: str, payloads: list[str], clock: Any) -> float:
    if work != "enqueue":
        for start in range(0, len(payloads), 1000):
            raw.enqueue_batch(payloads[start:start + 1000])
    started = clock()
    if work == "enqueue":
        for payload in payloads:
            raw.enqueue(payload)
    elif work == "claim_ack":
        while (handle := raw.claim()) is not None:
            raw.ack(handle[0])
    else:
        while batch := raw.claim_batch(100):
            raw.ack_batch([handle for handle, _ in batch])
    return clock() - started


def _background_checkpoints(raw: Any, path: str, mode: str) -> Any:
    """Raw SQLite with the WAL settings and checkpoint thread a ``Queue`` uses."""
    raw.conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
    raw.conn.execute(f"PRAGMA journal_size_limit = {BUSY_WAL_LIMIT}")
    checkpointer = Checkpointer(Path(path), synchronous="FULL" if mode == "full" else "NORMAL")
    checkpointer.start()
    return checkpointer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base_dir")
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--durability", choices=("normal", "full"), default="normal")
    parser.add_argument("--raw-background-checkpoints", action="store_true",
                        help="give raw SQLite this tree's checkpoint thread and WAL settings")
    args = parser.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    mode = args.durability
    sys.path.insert(0, os.path.abspath(args.base_dir))
    base = importlib.import_module("pq_base")
    payloads = [make_payload(i) for i in range(args.jobs)]
    with tempfile.TemporaryDirectory(prefix="pq-ab-") as workdir:
        queues = {
            "base": base.Queue(os.path.join(workdir, "base.db"), durability=mode),
            "new": persistent_queue.Queue(os.path.join(workdir, "new.db"), durability=mode),
        }
        raw = open_system(f"raw-{mode}", os.path.join(workdir, "raw.db"))
        raw_checkpointer = None
        if args.raw_background_checkpoints:
            raw_checkpointer = _background_checkpoints(raw, os.path.join(workdir, "raw.db"), mode)
        times: dict[str, list[float]] = {"base": [], "new": [], "raw": []}
        for round_ in range(args.rounds):
            order = ["base", "new", "raw"] if round_ % 2 == 0 else ["raw", "new", "base"]
            for name in order:
                elapsed = (_run_raw(raw, args.workload, payloads, clock) if name == "raw"
                           else _run_queue(queues[name], args.workload, payloads, clock))
                times[name].append(elapsed / args.jobs * 1e6)
        for q in queues.values():
            q.close()
        if raw_checkpointer is not None:
            raw_checkpointer.stop()
        raw.close()
    med = {name: statistics.median(values) for name, values in times.items()}

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    print(f"{args.workload} ({mode}): {args.clock} us per job base {med['base']:.1f}, "
          f"new {med['new']:.1f}, "
          f"raw {med['raw']:.1f}; new/base speed {ratio('base', 'new'):.2f}x; "
          f"vs raw SQLite: base {ratio('raw', 'base'):.2f}x, new {ratio('raw', 'new'):.2f}x "
          f"({args.rounds} rounds of {args.jobs:,} jobs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
