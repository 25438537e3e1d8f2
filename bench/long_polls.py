"""``/healthz`` latency under held long polls: ``python -m bench.long_polls [--polls 1000]
[--samples 300] [--db PATH_OR_URL]``.

Starts ``pq api`` (a real uvicorn process) on a fresh SQLite file (or ``--db``), measures
``GET /healthz`` one request at a time (p50/p99) with no poll held, then opens ``--polls``
concurrent ``GET /receive?queue=idle&wait=20`` on an empty queue, measures ``/healthz`` again
while they are held, and prints a table, with the server's thread count in each phase (the
polls wait on the API's AsyncQueue: a parked future each, no thread). Not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

WAIT = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def healthz_latencies(base: str, samples: int) -> list[float]:
    """Seconds per ``GET /healthz``, one request at a time on one keep-alive connection."""
    times = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(samples):
            started = time.perf_counter()
            response = client.get("/healthz")
            times.append(time.perf_counter() - started)
            response.raise_for_status()
    return times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def hold_polls(base: str, polls: int, held: threading.Event,
                     done: threading.Event) -> dict[int, int]:
    limits = httpx.Limits(max_connections=polls + 10, max_keepalive_connections=polls + 10)
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=WAIT + 30) as client:
        async def poll() -> None:
            response = await client.get("/receive", params={"queue": "idle", "wait": WAIT})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        tasks = [asyncio.ensure_future(poll()) for _ in range(polls)]
        await asyncio.sleep(3)  # a bench, not a test: let every poll reach the server
        held.set()
        await asyncio.gather(*tasks)
    done.set()
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--polls", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="pq-long-polls-")
    db = args.db or os.path.join(folder, "queue.db")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "persistent_queue", "api", "--db", db, "--port", str(port),
         "--durability", "normal", "--log-level", "warning", "--max-wait", str(WAIT)],
        stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the API did not start") from None
                time.sleep(0.1)
        healthz_latencies(base, 20)  # warm up
        idle_threads = threads_of(server.pid)
        quiet = healthz_latencies(base, args.samples)

        held, done = threading.Event(), threading.Event()
        outcome: dict[str, dict[int, int]] = {}
        polling = threading.Thread(target=lambda: outcome.setdefault(
            "statuses", asyncio.run(hold_polls(base, args.polls, held, done))))
        started = time.monotonic()
        polling.start()
        held.wait()
        busy_threads = threads_of(server.pid)
        loaded = healthz_latencies(base, args.samples)
        measured_within = time.monotonic() - started
        polling.join()
    finally:
        server.terminate()
        server.wait(30)

    print(f"/healthz latency, {args.samples} requests one at a time "
          f"({'SQLite' if args.db is None else 'given db'}, 2 cores)\n")
    print("| phase | p50 ms | p99 ms | max ms | server threads |")
    print("|---|---|---|---|---|")
    for name, times, threads in (("no poll held", quiet, idle_threads),
                                 (f"{args.polls} polls held (wait={WAIT})", loaded,
                                  busy_threads)):
        print(f"| {name} | {statistics.median(times) * 1000:.2f} | "
              f"{percentile(times, 0.99) * 1000:.2f} | {max(times) * 1000:.2f} | {threads} |")
    print(f"\npolls answered: {outcome.get('statuses')} "
          f"(measured {measured_within:.1f} s after they were sent, within their {WAIT} s)")


if __name__ == "__main__":
    main()
