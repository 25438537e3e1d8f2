"""Concurrent enqueue and drain: N threads of one process, one job per call.

Enqueue is an API server's request handlers; drain (``dequeue`` + ``ack`` until empty) is a
consumer's job threads. This is where group commit shows (``durability="full"``: concurrent
enqueues, claims and acks share one transaction and one fsync). Variants: this project in
full durability with group commit (the default) and without it, this project in normal
durability, and raw SQLite in both modes (one connection per thread, each statement its own
autocommit transaction). Every run checks that exactly the acknowledged jobs were stored
(enqueue) or that every job was acked once (drain).
"""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from .systems import Adapter, ProjectAdapter, make_payload, open_system, seq_of
from .workloads import fresh_path, prefill, verify

#: label -> (system key, group commit on/off for this project; None: the system's default)
VARIANTS: dict[str, tuple[str, bool | None]] = {
    "persistent-queue (full, group commit)": ("pq-full", True),
    "persistent-queue (full, no group commit)": ("pq-full", False),
    "persistent-queue (normal)": ("pq-normal", None),
    "raw SQLite (full)": ("raw-full", None),
    "raw SQLite (normal)": ("raw-normal", None),
}


def _open_for_threads(key: str, path: str, threads: int,
                      group_commit: bool | None) -> tuple[Adapter, list[Adapter]]:
    """The shared adapter and one per thread: this project's ``Queue`` is shared by the
    threads, as in a server; the other systems get a connection per thread."""
    shared = open_system(key, path)
    if isinstance(shared, ProjectAdapter):
        if group_commit is not None:
            shared.q.backend.dialect.group_commit = group_commit  # type: ignore[attr-defined]
        return shared, [shared] * threads
    return shared, [shared] + [open_system(key, path) for _ in range(threads - 1)]


def _run_threads(systems: list[Adapter], work: Callable[[int, Adapter], None],
                 errors: list[str]) -> float:
    """Run ``work(index, system)`` in one thread per system, released together; seconds."""
    barrier = threading.Barrier(len(systems) + 1)

    def run(index: int) -> None:
        barrier.wait()
        try:
            work(index, systems[index])
        except Exception as exc:  # noqa: BLE001 - reported with the result
            errors.append(f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=run, args=(i,)) for i in range(len(systems))]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    for system in set(systems):
        system.close()
    return elapsed


def enqueue_threads(key: str, workdir: str, jobs: int, threads: int,
                    group_commit: bool | None = None) -> dict[str, Any]:
    """``threads`` threads enqueue ``jobs`` jobs in all, one job per call."""
    path = fresh_path(workdir, key)
    shared, systems = _open_for_threads(key, path, threads, group_commit)
    shared.enqueue(make_payload(-1 % 10**8))  # schema and queue exist before the timing
    ids: list[list[int]] = [[] for _ in range(threads)]
    errors: list[str] = []

    def produce(index: int, system: Adapter) -> None:
        for seq in range(index, jobs, threads):
            system.enqueue(make_payload(seq))
            ids[index].append(seq)

    group = getattr(getattr(shared, "q", None), "backend", None)
    elapsed = _run_threads(systems, produce, errors)
    grouped = getattr(getattr(group, "_group", None), "grouped", 0)
    with sqlite3.connect(path) as conn:
        stored = conn.execute("SELECT count(*) FROM jobs").fetchone()[0] - 1
    acked = sum(len(part) for part in ids)
    return {"jobs_per_s": acked / elapsed, "seconds": elapsed, "threads": threads,
            "acked": acked, "stored": stored, "losses": acked - stored if stored < acked else 0,
            "grouped": grouped, "errors": errors}


def drain_threads(key: str, workdir: str, jobs: int, threads: int,
                  group_commit: bool | None = None) -> dict[str, Any]:
    """Prefill ``jobs``; ``threads`` threads claim + ack one job at a time until empty."""
    path = fresh_path(workdir, key)
    prefill(key, path, jobs)
    _, systems = _open_for_threads(key, path, threads, group_commit)
    seen: list[list[int]] = [[] for _ in range(threads)]
    errors: list[str] = []

    def consume(index: int, system: Adapter) -> None:
        while (got := system.claim()) is not None:
            system.ack(got[0])
            seen[index].append(seq_of(got[1]))

    elapsed = _run_threads(systems, consume, errors)
    flat = [seq for part in seen for seq in part]
    return {"jobs_per_s": len(flat) / elapsed, "seconds": elapsed, "threads": threads,
            "errors": errors, **verify(flat, jobs)}


WORKLOADS = {"enqueue": enqueue_threads, "drain": drain_threads}


def run(workdir: str, *, jobs: dict[str, int], thread_counts: list[int],
        rounds: int = 1, workload: str = "enqueue") -> dict[str, Any]:
    """``{label: {threads: result}}``; with ``rounds`` > 1 the median jobs/s of the rounds,
    the variants in alternating order (forwards, then backwards)."""
    out: dict[str, Any] = {label: {} for label in VARIANTS}
    for threads in thread_counts:
        samples: dict[str, list[dict[str, Any]]] = {label: [] for label in VARIANTS}
        for index in range(rounds):
            # Alternate the order: a full-durability run right after a normal-mode one pays
            # for the write-back of the pages the other left dirty.
            order = list(VARIANTS.items())
            for label, (key, group_commit) in order if index % 2 == 0 else order[::-1]:
                mode = "full" if key.endswith("full") else "normal"
                samples[label].append(WORKLOADS[workload](key, workdir, jobs[mode], threads,
                                                          group_commit))
        for label, results in samples.items():
            best = dict(results[0])
            best["jobs_per_s"] = statistics.median(r["jobs_per_s"] for r in results)
            best["rounds"] = [r["jobs_per_s"] for r in results]
            best["losses"] = sum(r["losses"] for r in results)
            best["duplicates"] = sum(r.get("duplicates", 0) for r in results)
            best["errors"] = [e for r in results for e in r["errors"]]
            out[label][str(threads)] = best
            print(f"  {workload:<7} {label:<42} {threads:>3} threads "
                  f"{best['jobs_per_s']:9,.0f} jobs/s  dup {best['duplicates']} "
                  f"lost {best['losses']}", flush=True)
    return out


def table(results: dict[str, Any], what: str = "enqueue, one job per call") -> str:
    counts = sorted({int(t) for entries in results.values() for t in entries})
    lines = [f"concurrent {what} (jobs/s; threads of one process):",
             "  " + "variant".ljust(42) + "".join(f"{t:>10} thr" for t in counts)]
    for label, entries in results.items():
        cells = "".join(f"{entries[str(t)]['jobs_per_s']:>14,.0f}" if str(t) in entries
                        else f"{'-':>14}" for t in counts)
        lines.append(f"  {label:<42}{cells}")
    on = results.get("persistent-queue (full, group commit)", {})
    off = results.get("persistent-queue (full, no group commit)", {})
    ratios = [f"{t} threads {on[str(t)]['jobs_per_s'] / off[str(t)]['jobs_per_s']:.2f}x"
              for t in counts if str(t) in on and str(t) in off]
    if ratios:
        lines.append("  group commit / none (full): " + ", ".join(ratios))
    return "\n".join(lines)


def chart(results: dict[str, Any], out_dir: str, name: str = "concurrent.png",
          what: str = "enqueue") -> str:
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    for label, entries in results.items():
        counts = sorted(int(t) for t in entries)
        style = "-" if label.startswith("persistent") else "--"
        ax.plot(counts, [entries[str(t)]["jobs_per_s"] for t in counts], style, marker="o",
                label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"threads ({what}, one process, one job per call)")
    ax.set_ylabel("jobs/s")
    ax.set_title(f"Concurrent {what}: group commit in durability=full")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
