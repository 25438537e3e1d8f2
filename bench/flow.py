"""What flow control costs: ``python -m bench.flow [--db URL] [--jobs N] [--rounds R]``.

One process claims and acks jobs one at a time (``dequeue`` + ``ack``, the consumer's loop)
from queues that differ only in their limits, none of which ever holds a job back, so the
figures are the price of checking them:

- ``none``: no limits (the plain claim, as before flow control);
- ``concurrency``: ``concurrency=100_000``;
- ``rate``: ``rate_limit="1000000/s"``;
- ``both``: the two together;
- ``groups``: ``group_concurrency=100_000``, jobs spread over 10 groups;
- ``ordered``: ``group_concurrency=1``, jobs spread over 1,000 groups (each claim reads the
  first jobs of every group).

Each round runs every variant on its own queue of one database, in alternating order, and
times it in CPU seconds of the whole process (PostgreSQL, or ``--clock wall``: wall-clock
seconds, for the server's work in another process or the waits for the disk). Printed: the
median per job and its ratio to ``none``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Any

from persistent_queue import Queue

VARIANTS: dict[str, tuple[dict[str, Any], int]] = {
    "none": ({}, 0),
    "concurrency": ({"concurrency": 100_000}, 0),
    "rate": ({"rate_limit": "1000000/s"}, 0),
    "both": ({"concurrency": 100_000, "rate_limit": "1000000/s"}, 0),
    "groups": ({"group_concurrency": 100_000}, 10),
    "ordered": ({"group_concurrency": 1}, 1000),
}


def _round(q: Queue, name: str, jobs: int, clock: Any) -> float:
    """Seconds per job to claim and ack ``jobs`` jobs of queue ``name``, one at a time."""
    groups = VARIANTS[name][1]
    payloads = [{"n": n} for n in range(jobs)]
    if groups:
        for group in range(groups):
            chunk = payloads[group::groups]
            if chunk:
                q.enqueue_many(name, chunk, group_key=f"g{group}")
    else:
        q.enqueue_many(name, payloads)
    started = clock()
    done = 0
    while (job := q.dequeue(name)) is not None:
        q.ack(job)
        done += 1
    elapsed = clock() - started
    assert done == jobs, (name, done)
    return elapsed / jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flow", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=None,
                        help="a postgresql:// URL (default: a SQLite file in a temp dir)")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--durability", choices=("normal", "full"), default="normal")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--clock", choices=("cpu", "wall"), default=None,
                        help="default: cpu on SQLite, wall on PostgreSQL")
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    postgres = args.db is not None and args.db.startswith(("postgres://", "postgresql://"))
    wall = args.clock == "wall" or (args.clock is None and postgres)
    clock = time.perf_counter if wall else time.process_time
    with tempfile.TemporaryDirectory(prefix="pq-flow-") as workdir:
        target = args.db or os.path.join(workdir, "flow.db")
        with Queue(target, durability=args.durability) as q:
            for name in names:
                q.create_queue(name, exist_ok=True, **VARIANTS[name][0])
            times: dict[str, list[float]] = {name: [] for name in names}
            for round_ in range(args.rounds):
                for name in names if round_ % 2 == 0 else reversed(names):
                    times[name].append(_round(q, name, args.jobs, clock) * 1e6)
            for name in names:
                q.delete_queue(name, force=True)
    base = times.get("none")
    print(f"claim + ack, one at a time ({'postgresql' if postgres else 'sqlite'}, "
          f"{args.durability}; {'wall' if wall else 'cpu'} us per job, median of "
          f"{args.rounds} rounds of {args.jobs:,} jobs)")
    for name in names:
        line = f"  {name:<12} {statistics.median(times[name]):8.1f} us"
        if base is not None and name != "none":
            ratio = statistics.median(b / t for b, t in zip(base, times[name], strict=True))
            line += f"   {ratio:.2f}x the speed of none"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
