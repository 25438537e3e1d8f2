"""Before/after on PostgreSQL in one process: ``python -m bench.pg_ab BASE_DIR [--jobs N]``.

BASE_DIR holds an older copy of the package under the name ``pq_base`` (as for
``bench.ab``). One throw-away cluster with the bench's durable settings, one database per
tree; each round runs N per-job enqueues, then N ``dequeue`` + ``ack``, on the old tree and
this one, alternating the order. Printed: wall-clock jobs/s (medians, and the median of the
per-round ratios: rounds moments apart share the machine's load), WAL bytes written per job
(``pg_current_wal_insert_lsn``; the load does not move these) and, at the end, the size of
the table's indexes after ``VACUUM``.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from typing import Any

import persistent_queue

from . import postgres

WORKLOADS = ("enqueue", "claim_ack")
PAYLOAD = {"p": "x" * 190}


def _wal(q: Any) -> int:
    rows = q.backend.execute_read("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn AS b")
    return int(rows[0]["b"])


def _round(q: Any, work: str, jobs: int) -> tuple[float, float]:
    """Jobs per second and WAL bytes per job of one workload."""
    wal = _wal(q)
    started = time.perf_counter()
    if work == "enqueue":
        for _ in range(jobs):
            q.enqueue("q", PAYLOAD)
    else:
        for _ in range(jobs):
            job = q.dequeue("q")
            q.ack(job)
    elapsed = time.perf_counter() - started
    return jobs / elapsed, (_wal(q) - wal) / jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_ab", description=__doc__)
    parser.add_argument("base_dir")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--durability", choices=("normal", "full"), default="normal")
    args = parser.parse_args(argv)
    sys.path.insert(0, args.base_dir)
    trees = {"before": importlib.import_module("pq_base"), "after": persistent_queue}
    speed: dict[str, dict[str, list[float]]] = {k: {w: [] for w in WORKLOADS} for k in trees}
    wal: dict[str, dict[str, list[float]]] = {k: {w: [] for w in WORKLOADS} for k in trees}
    with postgres.bench_cluster(["pg-normal"]):
        queues = {key: module.Queue(postgres.fresh_database(f"ab-{key}"),
                                    durability=args.durability)
                  for key, module in trees.items()}
        try:
            for number in range(args.rounds):
                order = list(trees) if number % 2 == 0 else list(reversed(trees))
                for key in order:
                    for work in WORKLOADS:
                        rate, per_job = _round(queues[key], work, args.jobs)
                        speed[key][work].append(rate)
                        wal[key][work].append(per_job)
            for work in WORKLOADS:
                ratios = [a / b for a, b in zip(speed["after"][work], speed["before"][work],
                                                strict=True)]
                print(f"{work}: {statistics.median(speed['before'][work]):,.0f} -> "
                      f"{statistics.median(speed['after'][work]):,.0f} jobs/s, median ratio "
                      f"{statistics.median(ratios):.2f} "
                      f"({', '.join(f'{r:.2f}' for r in ratios)}); WAL per job "
                      f"{statistics.median(wal['before'][work]):,.0f} -> "
                      f"{statistics.median(wal['after'][work]):,.0f} bytes")
            for key, q in queues.items():
                backend = q.backend  # a tree from before the storage core has no dialect
                conn = backend.dialect.conn() if hasattr(backend, "dialect") else backend._conn()
                conn.execute("VACUUM jobs")
                row = q.backend.execute_read(
                    "SELECT count(*) AS n, pg_indexes_size('jobs') AS b FROM jobs")[0]
                print(f"{key}: {row['n']:,} jobs, indexes of jobs {row['b']:,} bytes")
        finally:
            for q in queues.values():
                q.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
