"""Tasks against plain jobs: ``python -m bench.tasks [--jobs N] [--round-trips N] [--rounds R]``.

Two measurements, each alternating the two variants for ``--rounds`` rounds (fresh SQLite
databases, normal durability) and printing medians and the task/plain ratio:

- **in process**: the cost per job of the whole cycle in one thread, no worker process: plain
  ``enqueue`` + ``dequeue`` + ``ack`` against ``task.delay`` + ``dequeue`` + ``registry.run`` +
  ``ack(job, result=...)`` + ``result(timeout=0)`` (the task layer, the stored result and
  reading it back);
- **round trip through a worker**: one real ``pq worker --app bench.tasks:q --handler
  bench.tasks:noop`` process consumes both queues; the client stores one job and waits for it
  to finish, one at a time: ``task.delay(i).result()`` against ``enqueue`` + ``q.result(id)``
  of a plain job (acked by the handler, no result), p50 and p99 latency in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from persistent_queue import Job, Queue

#: The declaring Queue of the benchmark's task (only a declaration: the worker and the client
#: run it against their own database).
q = Queue(os.environ.get("BENCH_TASKS_DB", ":memory:"))
TASK_QUEUE, PLAIN_QUEUE = "bench_tasks", "bench_plain"


@q.task(queue=TASK_QUEUE, name="bench.double")
def double(n: int) -> dict[str, int]:
    """The benchmark's task: a small JSON result."""
    return {"n": n, "double": 2 * n}


def noop(job: Job) -> None:
    """The worker's handler of plain jobs."""


def _in_process(db: Path, jobs: int, variant: str) -> float:
    """Seconds per job of the whole cycle, one thread."""
    with Queue(db, durability="normal") as store:
        options = double.options()
        started = time.perf_counter()
        for i in range(jobs):
            if variant == "plain":
                store.enqueue(PLAIN_QUEUE, {"n": i})
                job = store.dequeue(PLAIN_QUEUE)
                assert job is not None
                store.ack(job)
            else:
                handle = options.delay_on(store, i)
                job = store.dequeue(TASK_QUEUE)
                assert job is not None
                store.ack(job, result=q.tasks.run(job, queue=store))
                assert store.result(handle.id, timeout=0) == {"n": i, "double": 2 * i}
        return (time.perf_counter() - started) / jobs


def _round_trips(store: Queue, count: int, variant: str) -> list[float]:
    """Milliseconds from storing a job to reading it finished, one job at a time."""
    options = double.options()
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        if variant == "plain":
            job = store.enqueue(PLAIN_QUEUE, {"n": i})
            store.result(job.id, timeout=30)
        else:
            value = options.delay_on(store, i).result(timeout=30)
            assert value == {"n": i, "double": 2 * i}
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def _start_worker(db: Path, workdir: Path) -> subprocess.Popen[bytes]:
    pq = Path(sys.executable).parent / "pq"
    root = Path(__file__).resolve().parents[1]
    env = os.environ | {"PYTHONPATH": str(root), "BENCH_TASKS_DB": ":memory:"}
    return subprocess.Popen(
        [str(pq), "--db", str(db), "--durability", "normal", "worker", "--app", "bench.tasks:q",
         "--handler", "bench.tasks:noop", "--queues", f"{TASK_QUEUE},{PLAIN_QUEUE}",
         "--log-dir", "", "--log-level", "WARNING"],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tasks", description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per in-process round")
    parser.add_argument("--round-trips", type=int, default=300,
                        help="round trips per variant and round through the worker")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, dict[str, list[float]]] = {
        "in process (µs/job)": {"plain": [], "task": []},
        "round trip p50 (ms)": {"plain": [], "task": []},
        "round trip p99 (ms)": {"plain": [], "task": []},
    }
    with tempfile.TemporaryDirectory(prefix="bench-tasks-") as tmp:
        work = Path(tmp)
        for number in range(args.rounds):
            order = ("plain", "task") if number % 2 == 0 else ("task", "plain")
            for variant in order:
                seconds = _in_process(work / f"inproc-{number}-{variant}.db", args.jobs, variant)
                results["in process (µs/job)"][variant].append(seconds * 1e6)
        db = work / "round-trips.db"
        with Queue(db, durability="normal") as store:
            worker = _start_worker(db, work)
            try:
                _round_trips(store, 20, "plain")  # the worker is up and warm
                _round_trips(store, 20, "task")
                for number in range(args.rounds):
                    order = ("plain", "task") if number % 2 == 0 else ("task", "plain")
                    for variant in order:
                        latencies = _round_trips(store, args.round_trips, variant)
                        results["round trip p50 (ms)"][variant].append(
                            _percentile(latencies, 0.5))
                        results["round trip p99 (ms)"][variant].append(
                            _percentile(latencies, 0.99))
            finally:
                worker.terminate()
                worker.wait(timeout=60)
    _print(results, args)
    return 0


def _print(results: dict[str, dict[str, list[float]]], args: Any) -> None:
    print(f"tasks vs plain jobs: SQLite, normal durability, {args.rounds} rounds (medians), "
          f"{args.jobs} jobs in process, {args.round_trips} round trips per round")
    print(f"{'measure':<22}{'plain':>10}{'task':>10}{'task/plain':>12}")
    for name, by_variant in results.items():
        plain = statistics.median(by_variant["plain"])
        task = statistics.median(by_variant["task"])
        print(f"{name:<22}{plain:>10.1f}{task:>10.1f}{task / plain:>12.2f}")


if __name__ == "__main__":
    sys.exit(main())
