"""Run the benchmark: ``python -m bench [--quick] [--jobs N] [--systems a,b]``.

Every system runs every workload it supports in this one process tree, on the same machine,
with the same payloads; results go to ``bench/results/results.json`` and charts to
``bench/results/*.png``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
from typing import Any

from . import concurrent, history, paired, report, workloads
from .systems import PEERS, SYSTEMS, open_system, system_path

HERE = os.path.dirname(os.path.abspath(__file__))


def run_system(key: str, workdir: str, args: argparse.Namespace) -> dict[str, Any]:
    probe = open_system(key, system_path(workdir, "probe-" + key.replace("/", "")))
    result: dict[str, Any] = {"name": probe.name, "mode": SYSTEMS[key][1]}
    batch_enqueue, batch_claim = probe.supports_batch_enqueue, probe.supports_batch_claim
    probe.close()

    def step(label: str, fn: Any, *a: Any, **kw: Any) -> None:
        started = time.perf_counter()
        try:
            result[label] = fn(*a, **kw)
        except (RuntimeError, OSError, sqlite3.Error) as exc:  # one failure loses one cell
            result[label] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"  {label:<16} {time.perf_counter() - started:6.1f}s  {summary(result[label])}",
              flush=True)

    print(f"{result['name']}", flush=True)
    jobs = args.full_jobs if SYSTEMS[key][1] == "full" else args.jobs
    if key in PEERS:
        jobs = min(jobs, args.peer_jobs)
    result["jobs"] = jobs
    step("enqueue", workloads.enqueue_per_job, key, workdir, jobs)
    if batch_enqueue:
        step("enqueue_batch", workloads.enqueue_batch, key, workdir, jobs, 1000)
    for processes in (1, 2, 8):
        step(f"drain_{processes}", workloads.drain, key, workdir, jobs, processes)
    if batch_claim:
        step("claim_ack_batch", workloads.claim_ack_batch, key, workdir, jobs, 100)
    step("mixed", workloads.mixed, key, workdir, args.mixed_jobs, args.mixed_rate)
    step("idle", workloads.idle_cpu, key, workdir, args.idle_seconds)
    return result


def _concurrent_charts(results: dict[str, Any], out: str) -> list[str]:
    if "concurrent" not in results:
        return []
    return [concurrent.chart(results["concurrent"], out),
            concurrent.chart(results["concurrent_drain"], out, "concurrent-drain.png",
                             "drain (dequeue + ack)")]


def summary(entry: dict[str, Any]) -> str:
    parts = []
    for field, fmt in (("jobs_per_s", "{:,.0f} jobs/s"), ("p50_ms", "p50 {:.2f} ms"),
                       ("p99_ms", "p99 {:.2f} ms"), ("duplicates", "dup {}"),
                       ("losses", "lost {}"), ("cpu_percent", "cpu {:.2f}%"),
                       ("peak_rss_mb", "rss {:.0f} MB"), ("error", "ERROR {}"),
                       ("errors", "errors {}")):
        if field in entry:
            parts.append(fmt.format(entry[field]))
    return ", ".join(parts)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="2,000 jobs, 20,000 done jobs of history, 1 s idle")
    parser.add_argument("--jobs", type=int, default=None, help="jobs per workload (20,000)")
    parser.add_argument("--full-jobs", type=int, default=None,
                        help="jobs per workload for systems that fsync every commit "
                             "(default: --jobs); lower it when the disk is shared and slow")
    parser.add_argument("--peer-jobs", type=int, default=None,
                        help="at most this many jobs per workload for the peers (--jobs)")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"comma-separated subset of {','.join(SYSTEMS)}")
    parser.add_argument("--history-done", type=int, default=None,
                        help="done jobs in the claim-latency table (1,000,000; 0 to skip)")
    parser.add_argument("--paired-rounds", type=int, default=None,
                        help="interleaved rounds of this project vs raw SQLite (5; 0 skips)")
    parser.add_argument("--only-paired", action="store_true",
                        help="run only the interleaved rounds (results-paired.json)")
    parser.add_argument("--concurrent-threads", default=None,
                        help="thread counts of the concurrent-enqueue workload (1,4,16; "
                             "empty skips it)")
    parser.add_argument("--concurrent-rounds", type=int, default=None,
                        help="alternating rounds of the concurrent-enqueue variants (3)")
    parser.add_argument("--only-concurrent", action="store_true",
                        help="run only the concurrent enqueue and drain workloads "
                             "(results-concurrent.json, concurrent*.png)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--workdir", default=None, help="where the databases go (a temp dir)")
    args = parser.parse_args(argv)
    args.jobs = args.jobs or (2_000 if args.quick else 20_000)
    args.full_jobs = args.full_jobs or args.jobs
    args.peer_jobs = args.peer_jobs or args.jobs
    if args.history_done is None:
        args.history_done = 20_000 if args.quick else 1_000_000
    if args.paired_rounds is None:
        args.paired_rounds = 2 if args.quick else 5
    if args.concurrent_threads is None:
        args.concurrent_threads = "1,8" if args.quick else "1,4,16"
    args.concurrent_threads = [int(t) for t in args.concurrent_threads.split(",") if t.strip()]
    if args.concurrent_rounds is None:
        args.concurrent_rounds = 1 if args.quick else 3
    args.history_ready = 2_000 if args.quick else 10_000
    args.mixed_jobs = 200 if args.quick else 1_000
    args.mixed_rate = 100.0
    args.idle_seconds = 1.0 if args.quick else 5.0
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in args.systems if s not in SYSTEMS]
    if unknown:
        parser.error(f"unknown system(s) {unknown}; choose from {list(SYSTEMS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    load = os.getloadavg()
    meta = {
        "jobs": args.jobs, "full_jobs": args.full_jobs,
        "peer_jobs": args.peer_jobs, "quick": args.quick,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version, "cpus": os.cpu_count(), "platform": platform.platform(),
        "loadavg_start": load, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mixed_jobs": args.mixed_jobs, "mixed_rate": args.mixed_rate,
        "idle_seconds": args.idle_seconds, "payload_bytes": 200,
    }
    print(f"{args.jobs:,} jobs per workload ({args.full_jobs:,} with synchronous=FULL); "
          f"load average {load[0]:.2f} on "
          f"{os.cpu_count()} CPUs", flush=True)
    results: dict[str, Any] = {"meta": meta, "systems": {}}
    from . import postgres  # its own cluster for the PostgreSQL rows, or a line saying why not

    postgres.start(args.systems)
    with tempfile.TemporaryDirectory(prefix="pq-bench-", dir=args.workdir) as workdir:
        if args.paired_rounds and not args.only_concurrent:
            print("interleaved rounds: this project vs raw SQLite", flush=True)
            results["paired"] = paired.run(
                workdir, rounds=args.paired_rounds,
                jobs={"normal": max(200, args.jobs // 4), "full": max(100, args.full_jobs // 4)})
        only = args.only_paired or args.only_concurrent
        for key in ([] if only else args.systems):
            if key in PEERS:
                try:
                    results["systems"][key] = run_system(key, workdir, args)
                except ImportError as exc:
                    print(f"{key}: skipped ({exc}); run `make bench` to install peers")
            else:
                results["systems"][key] = run_system(key, workdir, args)
            report.write_json(results, args.out, "results-partial.json")
        if args.concurrent_threads and not args.only_paired:
            print("concurrent enqueue: threads of one process, one job per call", flush=True)
            sizes = {"normal": max(200, args.jobs // 4), "full": max(100, args.full_jobs // 4)}
            results["concurrent"] = concurrent.run(
                workdir, rounds=args.concurrent_rounds, thread_counts=args.concurrent_threads,
                jobs=sizes)
            results["concurrent_drain"] = concurrent.run(
                workdir, rounds=args.concurrent_rounds, thread_counts=args.concurrent_threads,
                jobs=sizes, workload="drain")
            report.write_json(results, args.out, "results-partial.json")
        wants_history = any(k.startswith("pq") for k in args.systems)
        if args.history_done and not only and wants_history:
            print(f"claim latency with {args.history_done:,} done jobs", flush=True)
            samples = min(2_000, args.history_ready // 2 - 2)
            results["history"] = history.run(workdir, done=args.history_done,
                                             ready=args.history_ready, samples=samples)
        if postgres.running():  # interleaved rounds vs raw psycopg, claim latency with history
            postgres.run_extras(results, workdir, args)
    postgres.stop()
    meta["loadavg_end"] = os.getloadavg()
    print()
    print(report.table(results["systems"]))
    postgres.print_notes(results)
    if "paired" in results:
        print()
        print(paired.table(results["paired"]))
    if "history" in results:
        print()
        print(report.history_table(results["history"]))
    if "concurrent" in results:
        print()
        print(concurrent.table(results["concurrent"]))
        print()
        print(concurrent.table(results["concurrent_drain"], "drain, dequeue + ack"))
    print(f"\nload average {meta['loadavg_start'][0]:.2f} at start, "
          f"{meta['loadavg_end'][0]:.2f} at end")
    if args.only_paired:
        paired_json = report.write_json(results, args.out, "results-paired.json")
        print(f"wrote {os.path.relpath(paired_json)}")
        return 0
    if args.only_concurrent:
        written = report.write_json(results, args.out, "results-concurrent.json")
        print(f"wrote {os.path.relpath(written)}")
        for path in _concurrent_charts(results, args.out):
            print(f"wrote {os.path.relpath(path)}")
        return 0
    print(f"wrote {os.path.relpath(report.write_json(results, args.out))}")
    try:
        for path in report.charts(results, args.out):
            print(f"wrote {os.path.relpath(path)}")
        for path in _concurrent_charts(results, args.out):
            print(f"wrote {os.path.relpath(path)}")
    except ImportError:
        print("matplotlib is not installed: no charts (run `make bench`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
