"""Enqueue over HTTP against the library: ``python -m bench.http [--seconds 10] ...``.

For each durability, on fresh temporary databases:

1. the library's own enqueue rate: ``Queue.enqueue`` from one thread (right before and right
   after the single-enqueue HTTP run, their mean: a shared machine's load drifts), and from as
   many threads as wrk has connections (an in-process server's handlers; group commit);
2. ``pq api`` started as users start it (``pq api --db ... --durability ...``), driven by wrk
   (``/usr/bin/wrk``, a Lua script for the POST body) with ``--connections`` keep-alive
   clients for ``--seconds``: single ``POST /enqueue``, then ``POST /queues/{q}/jobs/batch``
   with ``--batch`` jobs per request;
3. after each run the jobs in the database are counted: every 2xx wrk reported must be there
   (a request in flight when wrk stopped may add a few more, never fewer).

Prints requests/s, jobs/s, p50/p99 latency, the ratio to the library and the goals of issue 24
(single enqueue over HTTP >= 0.5x the library, batch >= 50,000 jobs/s).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from persistent_queue import Queue

from .systems import PROJECT_QUEUE, make_payload

WRK = "/usr/bin/wrk"
#: The Lua script: a constant POST body; done() prints one JSON line wrk's summary reads.
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("{body}", "rb"):read("*a")
function done(summary, latency, requests)
  io.write(string.format(
    '{{"requests": %d, "non2xx": %d, "errors": %d, "seconds": %f, "p50_us": %d, '
    .. '"p99_us": %d}}\\n', summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.duration / 1e6, latency:percentile(50),
    latency:percentile(99)))
end
"""
GOAL_RATIO = 0.5
GOAL_BATCH_JOBS = 50_000


@dataclass
class HttpRun:
    """One wrk run and what the database holds afterwards."""

    label: str
    per_request: int
    requests: int
    ok: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    stored: int

    @property
    def requests_per_s(self) -> float:
        return self.ok / self.seconds

    @property
    def jobs_per_s(self) -> float:
        return self.ok * self.per_request / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def library_rate(path: str, durability: str, seconds: float, threads: int) -> float:
    """Jobs/s of ``Queue.enqueue`` from ``threads`` threads for about ``seconds``."""
    q = Queue(path, durability=durability)  # type: ignore[arg-type]
    payload = make_payload(0)
    stop = threading.Event()
    counts = [0] * threads

    def work(slot: int) -> None:
        while not stop.is_set():
            for _ in range(50):
                q.enqueue(PROJECT_QUEUE, payload)
            counts[slot] += 50

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    stop.wait(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    stored = q.stats(PROJECT_QUEUE).ready
    q.close()
    if stored != sum(counts):
        raise SystemExit(f"library run: {sum(counts)} enqueued but {stored} stored")
    return stored / elapsed


def start_api(path: str, durability: str, port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    """``pq api`` as users run it; returns once ``/healthz`` answers (60 s deadline)."""
    pq = shutil.which("pq", path=str(Path(sys.executable).parent)) or "pq"
    server = subprocess.Popen([pq, "api", "--db", path, "--durability", durability,
                               "--port", str(port), *extra],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"pq api exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("pq api did not answer /healthz within 60 s")


def stop_api(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def run_wrk(url: str, body: bytes, workdir: str, args: argparse.Namespace) -> dict[str, Any]:
    body_path = os.path.join(workdir, "body.json")
    Path(body_path).write_bytes(body)
    script = os.path.join(workdir, "post.lua")
    Path(script).write_text(LUA.format(body=body_path))
    out = subprocess.run([WRK, f"-t{args.wrk_threads}", f"-c{args.connections}",
                          f"-d{args.seconds}s", "--timeout", "30s", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return summary


def http_run(label: str, path: str, durability: str, per_request: int,
             args: argparse.Namespace) -> HttpRun:
    port = free_port()
    server = start_api(path, durability, port, args.api_args.split())
    payload = make_payload(0)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            if per_request == 1:
                url = f"http://127.0.0.1:{port}/enqueue"
                body = json.dumps({"queue": PROJECT_QUEUE, "payload": payload})
            else:
                url = f"http://127.0.0.1:{port}/queues/{PROJECT_QUEUE}/jobs/batch"
                body = json.dumps([{"payload": payload}] * per_request)
            result = run_wrk(url, body.encode(), workdir, args)
    finally:
        stop_api(server)
    q = Queue(path)
    stored = q.stats(PROJECT_QUEUE).ready
    q.close()
    ok = result["requests"] - result["non2xx"]
    return HttpRun(label, per_request, result["requests"], ok, result["errors"],
                   result["seconds"], result["p50_us"] / 1000, result["p99_us"] / 1000, stored)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="per run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk's (default 32)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk's (default 1)")
    parser.add_argument("--durability", default="normal,full", help="default normal,full")
    parser.add_argument("--batch", default="100,1000", help="jobs per batch request")
    parser.add_argument("--api-args", default="", help="more flags for pq api, e.g. "
                                                       "'--log-level warning'")
    args = parser.parse_args(argv)
    if not os.access(WRK, os.X_OK):
        print(f"{WRK} not found (apt-get install wrk)", file=sys.stderr)
        return 2
    batches = [int(n) for n in args.batch.split(",") if n]
    failures = 0
    for durability in args.durability.split(","):
        with tempfile.TemporaryDirectory() as workdir:
            def fresh(name: str, workdir: str = workdir) -> str:
                return os.path.join(workdir, f"{name}.db")

            # The load of a shared machine drifts: the library is timed right before and
            # right after the single-enqueue run, and compared with their mean.
            before = library_rate(fresh("lib1a"), durability, args.seconds, 1)
            runs = [http_run("POST /enqueue", fresh("single"), durability, 1, args)]
            after = library_rate(fresh("lib1b"), durability, args.seconds, 1)
            one = (before + after) / 2
            many = library_rate(fresh("libN"), durability, args.seconds, args.connections)
            runs += [http_run(f"batch of {n:,}", fresh(f"batch{n}"), durability, n, args)
                     for n in batches]
        print(f"\n## durability {durability}: {args.connections} connections, "
              f"{args.seconds} s per run, pq api {args.api_args}".rstrip())
        print(f"library Queue.enqueue: {one:,.0f} jobs/s (1 thread; {before:,.0f} before and "
              f"{after:,.0f} after the HTTP run), {many:,.0f} jobs/s "
              f"({args.connections} threads)\n")
        print("| run | requests/s | jobs/s | p50 ms | p99 ms | x library (1 thread) "
              "| x library (threads) | 2xx / stored | goal |")
        print("|---|---|---|---|---|---|---|---|---|")
        for run in runs:
            lost = run.ok * run.per_request > run.stored or run.errors
            if run.per_request == 1:
                held = run.jobs_per_s >= GOAL_RATIO * one
                goal = f">= {GOAL_RATIO}x library: {'held' if held else 'MISSED'}"
            else:
                held = run.jobs_per_s >= GOAL_BATCH_JOBS
                goal = f">= {GOAL_BATCH_JOBS:,} jobs/s: {'held' if held else 'MISSED'}"
            failures += bool(lost)
            print(f"| {run.label} | {run.requests_per_s:,.0f} | {run.jobs_per_s:,.0f} "
                  f"| {run.p50_ms:.1f} | {run.p99_ms:.1f} | {run.jobs_per_s / one:.2f} "
                  f"| {run.jobs_per_s / many:.2f} | {run.ok * run.per_request:,} / "
                  f"{run.stored:,}{' LOST' if lost else ''} | {goal} |")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
