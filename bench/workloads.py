"""The workloads: each opens a fresh store for one system and returns plain numbers.

Multi-process workloads use the ``spawn`` start method, so a consumer's peak RSS is its own
(not a copy of the harness) and every process opens its own connections, as in production.
All timestamps that cross processes come from ``time.monotonic`` (one clock per machine) or,
for enqueue-to-start latency, ``time.time`` written into the payload.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import resource
import shutil
import statistics
import time
from collections import Counter
from typing import Any

from . import postgres
from .systems import make_payload, open_system, seq_of, system_path

CTX = mp.get_context("spawn")


def fresh_path(workdir: str, key: str) -> str:
    if postgres.is_postgres(key):  # a new empty database
        return postgres.fresh_database(key)
    path = system_path(workdir, key)
    shutil.rmtree(path, ignore_errors=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.remove(path + suffix)
        except (FileNotFoundError, IsADirectoryError):
            pass
    return path


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def prefill(key: str, path: str, jobs: int) -> None:
    system = open_system(key, path)
    try:
        payloads = [make_payload(i) for i in range(jobs)]
        if system.supports_batch_enqueue:
            for start in range(0, jobs, 1000):
                system.enqueue_batch(payloads[start:start + 1000])
        else:
            system.relax_for_prefill()
            for payload in payloads:
                system.enqueue(payload)
    finally:
        system.close()


def enqueue_per_job(key: str, workdir: str, jobs: int) -> dict[str, float]:
    """One call (one transaction) per job, in one process."""
    path = fresh_path(workdir, key)
    system = open_system(key, path)
    payloads = [make_payload(i) for i in range(jobs)]
    try:
        system.enqueue(make_payload(-1 % 10**8))  # create the schema outside the timing
        started = time.perf_counter()
        for payload in payloads:
            system.enqueue(payload)
        elapsed = time.perf_counter() - started
    finally:
        system.close()
    return {"jobs_per_s": jobs / elapsed, "seconds": elapsed}


def enqueue_batch(key: str, workdir: str, jobs: int, batch: int = 1000) -> dict[str, float]:
    """``batch`` jobs per call, one transaction per call."""
    path = fresh_path(workdir, key)
    system = open_system(key, path)
    payloads = [make_payload(i) for i in range(jobs)]
    try:
        system.enqueue(make_payload(-1 % 10**8))
        started = time.perf_counter()
        for start in range(0, jobs, batch):
            system.enqueue_batch(payloads[start:start + batch])
        elapsed = time.perf_counter() - started
    finally:
        system.close()
    return {"jobs_per_s": jobs / elapsed, "seconds": elapsed}


def claim_ack_batch(key: str, workdir: str, jobs: int, batch: int = 100) -> dict[str, Any]:
    """One process claims ``batch`` jobs per call and acks them, until the queue is empty."""
    path = fresh_path(workdir, key)
    prefill(key, path, jobs)
    system = open_system(key, path)
    seen: list[int] = []
    try:
        started = time.perf_counter()
        while True:
            got = system.claim_batch(batch)
            if not got:
                break
            system.ack_batch([handle for handle, _ in got])
            seen.extend(seq_of(payload) for _, payload in got)
        elapsed = time.perf_counter() - started
    finally:
        system.close()
    return {"jobs_per_s": jobs / elapsed, "seconds": elapsed, **verify(seen, jobs)}


def verify(seen: list[int], jobs: int) -> dict[str, int]:
    """Exactly-once check: every sequence number acked once, none twice, none missing."""
    counts = Counter(seen)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    losses = sum(1 for seq in range(jobs) if seq not in counts)
    return {"acked": len(seen), "duplicates": duplicates, "losses": losses}


# -- drain with N consumer processes ---------------------------------------------------------

def _drain_worker(key: str, path: str, ready: Any, start: Any, out: Any) -> None:
    system = open_system(key, path)
    seen: list[int] = []
    error = None
    ready.release()
    start.wait()
    try:
        while True:
            got = system.claim()
            if got is None:
                break
            handle, payload = got
            system.ack(handle)
            seen.append(seq_of(payload))
    except Exception as exc:  # a peer gave up (e.g. "database is locked"): report it
        error = f"{type(exc).__name__}: {exc}"
    finished = time.monotonic()
    system.close()
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.put((seen, finished, rss_kb, error))


def _collect(out: Any, workers: list[Any], timeout: float) -> list[Any]:
    """One result per worker; fails fast if a worker died without sending one."""
    results: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(results) < len(workers):
        try:
            results.append(out.get(timeout=1.0))
        except queue.Empty:
            if time.monotonic() > deadline:
                raise RuntimeError("consumers did not finish in time") from None
            dead = [w for w in workers if not w.is_alive() and w.exitcode != 0]
            if dead:
                raise RuntimeError(f"a consumer died (exit code {dead[0].exitcode})") from None
    for worker in workers:
        worker.join(timeout=60)
    return results


def drain(key: str, workdir: str, jobs: int, processes: int) -> dict[str, Any]:
    """Prefill ``jobs``, then ``processes`` consumers claim + ack one job at a time."""
    path = fresh_path(workdir, key)
    prefill(key, path, jobs)
    ready, start, out = CTX.Semaphore(0), CTX.Event(), CTX.Queue()
    workers = [CTX.Process(target=_drain_worker, args=(key, path, ready, start, out))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    for _ in workers:
        if not ready.acquire(timeout=120):
            raise RuntimeError(f"{key}: a consumer did not start")
    began = time.monotonic()
    start.set()
    results = _collect(out, workers, 1800)
    seen = [seq for part, _, _, _ in results for seq in part]
    elapsed = max(finished for _, finished, _, _ in results) - began
    errors = [error for _, _, _, error in results if error]
    return {
        "jobs_per_s": len(seen) / elapsed,
        "seconds": elapsed,
        "peak_rss_mb": max(rss for _, _, rss, _ in results) / 1024,
        "errors": errors,
        **verify(seen, jobs),
    }


# -- mixed: a paced producer and waiting consumers --------------------------------------------

def _mixed_consumer(key: str, path: str, ready: Any, done: Any, out: Any) -> None:
    system = open_system(key, path)
    latencies: list[float] = []
    seen: list[int] = []
    ready.release()
    while True:
        got = system.wait_claim(0.25)
        if got is None:
            if done.is_set():
                got = system.claim()
                if got is None:
                    break
            else:
                continue
        started = time.time()
        handle, payload = got
        latencies.append(started - float(payload.split("|")[1]))
        system.ack(handle)
        seen.append(seq_of(payload))
    system.close()
    out.put((seen, latencies))


def mixed(key: str, workdir: str, jobs: int, rate: float, consumers: int = 2) -> dict[str, Any]:
    """A producer enqueues ``jobs`` at ``rate``/s while ``consumers`` wait for work."""
    path = fresh_path(workdir, key)
    producer = open_system(key, path)
    producer.enqueue_batch([])  # create the schema before consumers open it
    ready, done, out = CTX.Semaphore(0), CTX.Event(), CTX.Queue()
    workers = [CTX.Process(target=_mixed_consumer, args=(key, path, ready, done, out))
               for _ in range(consumers)]
    for worker in workers:
        worker.start()
    for _ in workers:
        if not ready.acquire(timeout=120):
            raise RuntimeError(f"{key}: a consumer did not start")
    time.sleep(0.3)  # pacing, not synchronisation: let consumers enter their wait
    began = time.monotonic()
    for seq in range(jobs):
        due = began + seq / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        head = f"{seq:08d}|{time.time():.6f}|"
        producer.enqueue(head + "x" * max(0, 200 - len(head)))
    done.set()
    results = _collect(out, workers, 600)
    producer.close()
    seen = [seq for part, _ in results for seq in part]
    latencies = [lat * 1000 for _, part in results for lat in part]
    return {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "rate": rate,
        **verify(seen, jobs),
    }


# -- an idle consumer ------------------------------------------------------------------------

def _idle_consumer(key: str, path: str, seconds: float, out: Any) -> None:
    system = open_system(key, path)
    system.claim()  # connections and caches warm
    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        system.wait_claim(min(1.0, max(0.01, seconds - (time.monotonic() - began))))
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    system.close()
    out.put({"cpu_percent": 100 * cpu / wall, "seconds": wall,
             "peak_rss_mb": after.ru_maxrss / 1024})


def idle_cpu(key: str, workdir: str, seconds: float) -> dict[str, float]:
    """CPU used by one consumer waiting on an empty queue (its own blocking get, or polling)."""
    path = fresh_path(workdir, key)
    setup = open_system(key, path)
    setup.enqueue_batch([])
    setup.close()
    out = CTX.Queue()
    worker = CTX.Process(target=_idle_consumer, args=(key, path, seconds, out))
    worker.start()
    result: dict[str, float] = out.get(timeout=seconds + 120)
    worker.join(timeout=60)
    return result


def summarize(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
