"""Profile the hot path with pyinstrument: ``python -m bench.profile [--jobs N] [--mode M]``.

Profiles, one process, one fresh database each: per-job enqueue, batch enqueue (1,000 per
call), per-job dequeue + ack, and batch dequeue (100 per call) + ack. Writes a text report
per workload to ``bench/results/profile-*.txt`` and prints the top of each.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from persistent_queue import Queue

from .systems import PROJECT_QUEUE, make_payload

HERE = os.path.dirname(os.path.abspath(__file__))


def workloads(q: Queue, jobs: int) -> dict[str, Callable[[], None]]:
    payloads = [make_payload(i) for i in range(jobs)]

    def enqueue() -> None:
        for payload in payloads:
            q.enqueue(PROJECT_QUEUE, payload)

    def enqueue_batch() -> None:
        for start in range(0, jobs, 1000):
            q.enqueue_many(PROJECT_QUEUE, payloads[start:start + 1000])

    def claim_ack() -> None:
        while (job := q.dequeue(PROJECT_QUEUE)) is not None:
            q.ack(job)

    def claim_ack_batch() -> None:
        while batch := q.dequeue_many(PROJECT_QUEUE, 100):
            ack_many = getattr(q, "ack_many", None)
            if ack_many is not None:
                ack_many(batch)
            else:
                for job in batch:
                    q.ack(job)

    # Order matters: each claim workload drains what the enqueues before it stored.
    return {"enqueue": enqueue, "claim_ack": claim_ack, "enqueue_batch": enqueue_batch,
            "claim_ack_batch": claim_ack_batch}


def main(argv: list[str] | None = None) -> int:
    from pyinstrument import Profiler

    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--mode", choices=("normal", "full"), default="normal")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pq-profile-") as workdir:
        q = Queue(os.path.join(workdir, "profile.db"), durability=args.mode)
        for name, fn in workloads(q, args.jobs).items():
            profiler = Profiler(interval=0.0005)
            profiler.start()
            fn()
            profiler.stop()
            text = profiler.output_text(unicode=False, color=False, show_all=False)
            # Paths relative to the project, so a profile reads the same on every machine.
            text = text.replace(str(Path(__file__).resolve().parent.parent) + os.sep, "")
            path = os.path.join(args.out, f"profile-{name}.txt")
            with open(path, "w") as fh:
                fh.write(f"# {name}, {args.jobs:,} jobs, durability={args.mode}\n{text}")
            print(f"== {name} ({os.path.relpath(path)})")
            print("\n".join(text.splitlines()[:40]))
        q.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
