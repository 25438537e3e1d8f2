"""Thread against process executor: ``python -m bench.executors [--jobs N] [--rounds R]
[--replacements K]``.

Two tables, from medians over ``--rounds`` alternating rounds:

- **no-op jobs per second** with 1 and 4 slots: ``Router.run`` called inline by each of the
  slots' threads (what the thread executor does), against
  :meth:`~persistent_queue.executors.ProcessExecutor.run` from the same threads (pickle the job,
  the pipe both ways, the child's ``Router.run``). No database: only the executor's cost;
- **child start-up** per start method (``forkserver``, ``spawn``): ``start()`` of 4 slots (the
  forkserver already running; its own start is printed once), and the replacement of a
  child: the time from a job that killed its child (``os._exit``) to the answer of the next
  no-op job, less a no-op job's usual time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from persistent_queue.executors import ProcessExecutor
from persistent_queue.models import Job, JobState
from persistent_queue.worker_routing import Router

NOT_CANCELLED = threading.Event()


def noop(job: Job) -> None:
    """The benchmark's handler; a payload ``{"exit": true}`` ends its process."""
    if isinstance(job.payload, dict) and job.payload.get("exit"):
        os._exit(3)


def make_job(i: int, payload: object = None) -> Job:
    return Job(id=i, queue="bench", payload=payload if payload is not None else {"n": i},
               headers={}, priority=0, state=JobState.LEASED, attempts=1, max_attempts=3,
               lease_token="token", lease_expires_at=0.0, created_at=0.0, available_at=0.0,
               updated_at=0.0)


def executor(db: Path, slots: int, start_method: str = "forkserver") -> ProcessExecutor:
    return ProcessExecutor(size=slots, db=str(db), queue_options={},
                           handler="bench.executors:noop", app=None, worker_id="bench",
                           start_method=start_method)


def _in_threads(slots: int, jobs: int, run_one: object) -> float:
    """Jobs per second with ``slots`` threads, each running ``jobs // slots`` jobs."""
    per_thread = jobs // slots
    barrier = threading.Barrier(slots + 1)

    def work(slot: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            run_one(slot, make_job(i))  # type: ignore[operator]

    threads = [threading.Thread(target=work, args=(s,)) for s in range(slots)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return per_thread * slots / (time.perf_counter() - started)


def throughput(db: Path, slots: int, jobs: int, variant: str) -> float:
    if variant == "thread":
        router = Router(None, noop, None, "bench")  # type: ignore[arg-type]
        return _in_threads(slots, jobs, lambda slot, job: router.run(job))
    with executor(db, slots) as pool:
        def run_one(slot: int, job: Job) -> None:
            outcome = pool.run(job, slot=slot, timeout=None, cancel=NOT_CANCELLED, grace=0)
            assert outcome.kind == "ok", outcome

        return _in_threads(slots, jobs, run_one)


def start_up(db: Path, start_method: str, replacements: int) -> tuple[float, float]:
    """Milliseconds: ``start()`` of 4 slots, and the median replacement of a child."""
    pool = executor(db, 4, start_method)
    started = time.perf_counter()
    pool.start()
    start_ms = (time.perf_counter() - started) * 1000
    try:
        usual = []
        for i in range(20):
            t = time.perf_counter()
            pool.run(make_job(i), slot=0, timeout=None, cancel=NOT_CANCELLED, grace=0)
            usual.append(time.perf_counter() - t)
        replace = []
        for i in range(replacements):
            outcome = pool.run(make_job(i, {"exit": True}), slot=0, timeout=None,
                               cancel=NOT_CANCELLED, grace=0)
            assert outcome.kind == "crashed", outcome
            t = time.perf_counter()
            assert pool.run(make_job(i), slot=0, timeout=None, cancel=NOT_CANCELLED,
                            grace=0).kind == "ok"
            replace.append(time.perf_counter() - t)
        return start_ms, (statistics.median(replace) - statistics.median(usual)) * 1000
    finally:
        pool.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.executors", description=__doc__)
    parser.add_argument("--jobs", type=int, default=4000, help="no-op jobs per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--replacements", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "unused.db"  # the children never open it: no job needs a Queue
        first = executor(db, 1)
        started = time.perf_counter()
        first.start()  # starts the forkserver, once per worker process
        first_ms = (time.perf_counter() - started) * 1000
        first.shutdown()
        rates: dict[tuple[str, int], list[float]] = {}
        for _ in range(args.rounds):
            for slots in (1, 4):
                for variant in ("thread", "process"):
                    rates.setdefault((variant, slots), []).append(
                        throughput(db, slots, args.jobs, variant))
        print(f"no-op jobs per second (median of {args.rounds} rounds, {args.jobs} jobs, "
              f"{os.cpu_count()} CPUs)")
        print(f"{'slots':>5}  {'thread':>10}  {'process':>10}  {'process/thread':>14}  "
              f"{'process µs/job per slot':>23}")
        for slots in (1, 4):
            thread = statistics.median(rates["thread", slots])
            process = statistics.median(rates["process", slots])
            print(f"{slots:>5}  {thread:>10,.0f}  {process:>10,.0f}  {process / thread:>14.3f}  "
                  f"{slots / process * 1e6:>23.0f}")
        print()
        print(f"child start-up (median of {args.rounds} rounds, "
              f"{args.replacements} replacements each)")
        print(f"{'start method':<12}  {'start() 4 slots (ms)':>20}  {'replacement (ms)':>16}")
        for method in ("forkserver", "spawn"):
            measured = [start_up(db, method, args.replacements) for _ in range(args.rounds)]
            print(f"{method:<12}  {statistics.median(m[0] for m in measured):>20.1f}  "
                  f"{statistics.median(m[1] for m in measured):>16.1f}")
        print(f"the first start() of a process, which starts the forkserver: {first_ms:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
