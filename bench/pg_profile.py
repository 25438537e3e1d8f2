"""Profile the PostgreSQL hot path: ``python -m bench.pg_profile [--jobs N] [--mode M]``.

Starts the benchmark's durable throw-away cluster, then runs the same four workloads as
``bench.profile`` (per-job enqueue, per-job dequeue + ack, batch enqueue, batch dequeue + ack)
on ``Queue("postgresql://...")`` under pyinstrument, counting the statements each workload
sends (every statement is one client-server round trip in autocommit mode). Writes
``bench/results/profile-pg-*.txt`` and prints statements per job and the top of each profile.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from persistent_queue import Queue

from . import postgres
from .profile import workloads

HERE = os.path.dirname(os.path.abspath(__file__))


@contextmanager
def counting_statements() -> Iterator[Counter[str]]:
    """Count every statement psycopg sends, by its first SQL line."""
    import psycopg

    counts: Counter[str] = Counter()
    original = psycopg.Cursor.execute

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        text = query if isinstance(query, str) else str(getattr(query, "_obj", query))
        lines = [ln.strip() for ln in text.strip().splitlines()
                 if ln.strip() and not ln.strip().startswith("--")]
        counts[lines[0][:70] if lines else "?"] += 1
        return original(self, query, *args, **kwargs)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        psycopg.Cursor.execute = original  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    from pyinstrument import Profiler

    parser = argparse.ArgumentParser(prog="python -m bench.pg_profile", description=__doc__)
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--mode", choices=("normal", "full"), default="normal")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    systems = ["pg-" + args.mode]
    postgres.start(systems)
    if not systems:
        return 0  # the reason was printed
    try:
        q = Queue(postgres.fresh_database("profile"), durability=args.mode)
        for name, fn in workloads(q, args.jobs).items():
            profiler = Profiler(interval=0.0005)
            with counting_statements() as counts:
                started = time.perf_counter()
                profiler.start()
                fn()
                profiler.stop()
                elapsed = time.perf_counter() - started
            text = profiler.output_text(unicode=False, color=False, show_all=False)
            text = text.replace(str(Path(__file__).resolve().parent.parent) + os.sep, "")
            total = sum(counts.values())
            head = (f"# {name} on PostgreSQL, {args.jobs:,} jobs, durability={args.mode}: "
                    f"{args.jobs / elapsed:,.0f} jobs/s under the profiler, "
                    f"{total / args.jobs:.2f} statements per job\n"
                    + "".join(f"#   {n / args.jobs:6.3f}/job  {sql}\n"
                              for sql, n in counts.most_common(8)))
            path = os.path.join(args.out, f"profile-pg-{name}.txt")
            with open(path, "w") as fh:
                fh.write(head + text)
            print(f"== {name} ({path})")
            print(head + "\n".join(text.splitlines()[:40]))
        q.close()
    finally:
        postgres.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
