"""Whole systems, end to end: ``python -m bench.endtoend [--jobs N] [--rounds R] [--systems a,b]``.

Each system runs as its users run it: its own worker command (2 worker processes), its own
producer call from one producer process, its broker started here (Redis from Debian's
``redis-server`` on a free port with AOF ``everysec``; a throw-away PostgreSQL cluster with
``fsync=on``). Every task is a no-op that appends one record (``bench/endtoend_peers``).

Per system and round: start the workers and wait until they are warm (warm-up jobs have run in
every worker process); then

- **throughput**: the warm workers are frozen (SIGSTOP, at a moment none holds SQLite's write
  lock), one producer stores ``--jobs`` jobs as fast as it can (enqueue/s: jobs over the
  producer's time), the workers are let go (SIGCONT) and drain/s is jobs over the time from
  then to the start of the last job; worker CPU is the user + system time of the worker
  processes and their children (``/proc``) over that drain, per 1,000 jobs;
- **latency**: a paced producer (``--rate`` jobs/s, ``--latency-jobs`` jobs); enqueue→start
  is the task's start time minus the timestamp its payload carries (p50 / p99 ms);
- **exactly once**: every record is counted; a sequence number missing is lost, one seen
  twice duplicated (warm-up jobs included).

Rounds run the systems in alternating order; the table shows the mean of the rounds, the JSON
(``bench/results/endtoend.json``) every round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import endtoend_report as report
from .endtoend_brokers import Brokers
from .endtoend_peers import common

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PEERS = "bench.endtoend_peers."
PRIMER = -1 % 10**8  # the producer's first, untimed job (connects, creates the queue)
WARMUP_JOBS = 20
STALL_SECONDS = 60.0  # a drain that records nothing for this long has lost its jobs


@dataclass(frozen=True)
class System:
    """One row: how its workers start and what it runs on."""

    name: str
    module: str
    broker: str  # sqlite, redis or postgres
    workers: list[list[str]]  # one command per worker process launched
    processes: int  # worker processes that run tasks (warm when each has run one)
    ours: bool = False
    #: an acknowledged enqueue survives power loss (fsync per commit: SQLite FULL, PostgreSQL
    #: with fsync; not Redis with appendfsync everysec, which may lose the last second)
    durable: bool = False
    env: dict[str, str] = field(default_factory=dict)


def _pq(durability: str) -> list[list[str]]:
    command = [sys.executable, "-m", "persistent_queue", "worker", "--db", "{db}", "--queue",
               "e2e", "--handler", PEERS + "pq_app:handle", "--concurrency", "4",
               "--durability", durability, "--log-dir", "{run}"]
    return [command, command]


def _rq(worker: str | None) -> list[list[str]]:
    command = [str(BIN / "rq"), "worker", "e2e", "--url", "{redis}"]
    if worker:
        command += ["-w", worker]
    return [command, command]


PROCRASTINATE = [str(BIN / "procrastinate"), "--app", PEERS + "procrastinate_app.app", "worker"]

SYSTEMS: dict[str, System] = {
    "pq-normal": System("this project, normal (pq worker 2 x 4)", PEERS + "pq_app", "sqlite",
                        _pq("normal"), 2, ours=True, env={"BENCH_E2E_DURABILITY": "normal"}),
    "pq-full": System("this project, full (pq worker 2 x 4)", PEERS + "pq_app", "sqlite",
                      _pq("full"), 2, ours=True, durable=True,
                      env={"BENCH_E2E_DURABILITY": "full"}),
    "huey-thread": System("huey SqliteHuey, threads (-k thread -w 2)", PEERS + "huey_app",
                          "sqlite", [[str(BIN / "huey_consumer"), PEERS + "huey_app.huey",
                                      "-k", "thread", "-w", "2"]], 1, durable=True),
    "huey-process": System("huey SqliteHuey, processes (-k process -w 2)", PEERS + "huey_app",
                           "sqlite", [[str(BIN / "huey_consumer"), PEERS + "huey_app.huey",
                                       "-k", "process", "-w", "2"]], 2, durable=True),
    "dramatiq": System("dramatiq + Redis (--processes 2)", PEERS + "dramatiq_app", "redis",
                       [[str(BIN / "dramatiq"), PEERS + "dramatiq_app", "--processes", "2"]], 2),
    "celery": System("Celery + Redis, acks_late (-c 2 prefork)", PEERS + "celery_app", "redis",
                     [[str(BIN / "celery"), "-A", PEERS + "celery_app", "worker", "-c", "2"]],
                     2),
    "rq-simple": System("RQ + Redis, SimpleWorker x 2", PEERS + "rq_app", "redis",
                        _rq("rq.worker.SimpleWorker"), 2),
    "rq-fork": System("RQ + Redis, default fork worker x 2", PEERS + "rq_app", "redis",
                      _rq(None), 2, env={"BENCH_E2E_IDENT": "ppid"}),
    "procrastinate": System("procrastinate + PostgreSQL (worker x 2)",
                            PEERS + "procrastinate_app", "postgres",
                            [PROCRASTINATE, PROCRASTINATE], 2, durable=True),
    "pg-normal": System("this project on PostgreSQL, normal", PEERS + "pq_app", "postgres",
                        _pq("normal"), 2, ours=True, env={"BENCH_E2E_DURABILITY": "normal"}),
    "pg-full": System("this project on PostgreSQL, full", PEERS + "pq_app", "postgres",
                      _pq("full"), 2, ours=True, durable=True,
                      env={"BENCH_E2E_DURABILITY": "full"}),
}
OURS = [key for key, system in SYSTEMS.items() if system.ours and system.broker == "sqlite"]


# -- one run -------------------------------------------------------------------------------------

def cpu_seconds(roots: list[int]) -> float:
    """User + system CPU of the processes ``roots`` and every descendant (waited-for children
    included), from ``/proc``."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        stats[int(entry)] = (int(fields[1]), ticks / os.sysconf("SC_CLK_TCK"))
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    tree, todo = set(), [pid for pid in roots if pid in stats]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    return sum(stats[pid][1] for pid in tree)


class Run:
    """One system's workers, the records they write and the producers that feed them."""

    def __init__(self, key: str, system: System, env: dict[str, str], run: Path) -> None:
        self.key, self.system, self.run = key, system, run
        self.env = {**os.environ, **env}
        self.records = env["BENCH_E2E_OUT"]
        self.expected = 0
        self.sent: dict[int, int] = {}  # phase -> jobs sent (sequence numbers 0..n-1)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Any] = []

    def start(self) -> None:
        fill = {"db": self.env.get("BENCH_E2E_DB", ""), "redis": self.env.get("BENCH_E2E_REDIS",
                                                                             ""),
                "run": str(self.run)}
        for i, command in enumerate(self.system.workers):
            log = open(self.run / f"worker-{i}.log", "wb")
            self.logs.append(log)
            self.workers.append(subprocess.Popen(
                [part.format(**fill) for part in command], cwd=ROOT, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True))

    def produce(self, phase: int, jobs: int, rate: float | None = None) -> dict[str, float]:
        command = [sys.executable, "-m", PEERS + "common", self.system.module, str(phase),
                   str(jobs)] + ([str(rate)] if rate else [])
        done = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{self.key} producer failed: {done.stderr.strip()[-2000:]}")
        self.sent[phase] = jobs
        self.expected += jobs + 1  # and the primer
        return dict(json.loads(done.stdout))

    def wait(self) -> bool:
        """Poll the records until every job sent has started; False when they stall."""
        seen, last_change = -1, time.monotonic()
        while (now := common.count(self.records)) < self.expected:
            if now != seen:
                seen, last_change = now, time.monotonic()
            elif time.monotonic() - last_change > STALL_SECONDS:
                return False
            if any(worker.poll() is not None for worker in self.workers):
                raise RuntimeError(f"{self.key}: a worker exited; see {self.run}/worker-*.log")
            time.sleep(0.02)  # polling the records file with a stall deadline
        return True

    def warm_up(self) -> None:
        """Warm-up jobs until every worker process has run one (at most 10 batches)."""
        for batch in range(10):
            self.produce(10 + batch, WARMUP_JOBS)
            self.wait()
            workers = {r.worker for r in common.read(self.records)}
            if len(workers) >= self.system.processes:
                return
        print(f"  warning: {self.key} ran warm-up jobs in {len(workers)} of "
              f"{self.system.processes} processes", flush=True)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to every worker process and its children (one group each)."""
        for worker in self.workers:
            try:
                os.killpg(worker.pid, signum)
            except ProcessLookupError:
                pass

    def freeze(self) -> None:
        """Stop the warm workers (SIGSTOP) at a moment none holds SQLite's write lock, so
        the producer can fill the queue; :meth:`signal` SIGCONT lets them drain it."""
        for _ in range(100):
            self.signal(signal.SIGSTOP)
            if self.system.broker != "sqlite" or writable(self.env["BENCH_E2E_DB"]):
                return
            self.signal(signal.SIGCONT)
            time.sleep(0.05)  # lets the worker finish the transaction it is in
        raise RuntimeError(f"{self.key}: a worker held the write lock at every try")

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(worker.pid, signal.SIGKILL)  # whatever the warm stop left behind
            except ProcessLookupError:
                pass
            worker.wait()
        for log in self.logs:
            log.close()

    def verify(self) -> dict[str, int]:
        """Lost and duplicated jobs over every phase (primers included)."""
        seen = Counter((r.phase, r.seq) for r in common.read(self.records))
        lost = duplicated = 0
        for phase, jobs in self.sent.items():
            for seq in [*range(jobs), PRIMER]:
                n = seen.pop((phase, seq), 0)
                lost += n == 0
                duplicated += max(0, n - 1)
        return {"lost": lost, "duplicated": duplicated + sum(seen.values())}


def run_system(key: str, env: dict[str, str], run: Path, jobs: int, latency_jobs: int,
               rate: float) -> dict[str, Any]:
    """One round of one system: warm workers, the throughput run, the latency run."""
    system = SYSTEMS[key]
    r = Run(key, system, env, run)
    r.start()
    try:
        r.warm_up()
        r.freeze()
        enq = r.produce(2, jobs)
        roots = [worker.pid for worker in r.workers]
        cpu_before, thawed = cpu_seconds(roots), time.time()
        r.signal(signal.SIGCONT)
        drained = r.wait()
        cpu = cpu_seconds(roots) - cpu_before
        r.produce(3, latency_jobs, rate)
        r.wait()
    finally:
        r.stop()
    records = common.read(r.records)
    starts = [rec.t_start_ns / 1e9 for rec in records if rec.phase == 2 and rec.seq != PRIMER]
    lat = sorted((rec.t_start_ns - rec.t_enq_ns) / 1e6 for rec in records
                 if rec.phase == 3 and rec.seq != PRIMER)
    result: dict[str, Any] = {
        "enqueue_per_s": jobs / (enq["end"] - enq["start"]),
        "drain_per_s": jobs / (max(starts) - thawed) if starts else 0.0,
        "drained": drained,
        "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
        "cpu_s_per_1k": cpu / jobs * 1000,
        **r.verify(),
    }
    shutil.rmtree(run, ignore_errors=True)
    return result


def environment(key: str, broker: dict[str, str], run: Path) -> dict[str, str]:
    """The environment of one run's workers and producers (its broker already empty)."""
    env = {"BENCH_E2E_OUT": str(run / "records.log"), "PYTHONPATH": str(ROOT),
           **SYSTEMS[key].env, **broker}
    if key == "procrastinate":
        subprocess.run([*PROCRASTINATE[:3], "schema", "--apply"], check=True, cwd=ROOT,
                       env={**os.environ, **env}, capture_output=True, timeout=120)
    return env


def writable(path: str) -> bool:
    """Whether a writer could take the SQLite database's write lock right now."""
    conn = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


# -- the whole benchmark ---------------------------------------------------------------------------

def run(keys: list[str], *, jobs: int, rounds: int, latency_jobs: int, rate: float,
        workdir: Path) -> dict[str, Any]:
    """Every system, ``rounds`` rounds in alternating order; the results as JSON-ready data."""
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        brokers = Brokers(stack, workdir)
        for key in list(keys):
            reason = brokers.unavailable(SYSTEMS[key].broker)
            if reason:
                print(f"{key} skipped: {reason}", flush=True)
                keys.remove(key)
        for n in range(rounds):
            for key in keys if n % 2 == 0 else keys[::-1]:
                run_dir = workdir / f"{key}-{n}"
                run_dir.mkdir(parents=True)
                started = time.monotonic()
                try:
                    env = environment(key, brokers.fresh(key, SYSTEMS[key].broker, run_dir),
                                      run_dir)
                    one = run_system(key, env, run_dir, jobs, latency_jobs, rate)
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    one = {"error": f"{type(exc).__name__}: {exc}"}
                results.setdefault(key, {"name": SYSTEMS[key].name, "ours": SYSTEMS[key].ours,
                                         "durable": SYSTEMS[key].durable, "rounds": []})
                results[key]["rounds"].append(one)
                print(f"round {n + 1} {key:<14} {time.monotonic() - started:5.1f}s  "
                      f"{report.summary(one)}", flush=True)
    for entry in results.values():
        good = [r for r in entry["rounds"] if "error" not in r]
        entry["lost"] = sum(r["lost"] for r in good)
        entry["duplicated"] = sum(r["duplicated"] for r in good)
        for metric in ("enqueue_per_s", "drain_per_s", "p50_ms", "p99_ms", "cpu_s_per_1k"):
            entry[metric] = statistics.fmean(r[metric] for r in good) if good else None
    return results


def _commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=False)
    except OSError:  # no git: a copy of the tree
        return ""
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.endtoend",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=5000, help="jobs of the throughput run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency-jobs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="jobs/s of the latency run")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"comma-separated, of {', '.join(SYSTEMS)}")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "endtoend.json"))
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.systems.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SYSTEMS]
    if unknown:
        parser.error(f"unknown systems: {', '.join(unknown)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop workers and brokers too
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pq-e2e-") as workdir:
        results = run(keys, jobs=args.jobs, rounds=args.rounds, latency_jobs=args.latency_jobs,
                      rate=args.rate, workdir=Path(workdir))
    print()
    print(report.table(results))
    checks = report.goals(results)
    for c in checks:
        print(f"{'HOLDS' if c['holds'] else 'MISSES'}  {c['goal']}: {c['ratio']:.2f}x")
    wrong = sum(e["lost"] + e["duplicated"] for e in results.values())
    counts = ", ".join(f"{k} {e['lost']}/{e['duplicated']}" for k, e in results.items())
    print(f"exactly once (lost/duplicated): {'held' if not wrong else 'FAILED'} ({counts})")
    meta = {"jobs": args.jobs, "rounds": args.rounds, "latency_jobs": args.latency_jobs,
            "rate": args.rate, "cpus": os.cpu_count(), "python": platform.python_version(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": _commit(),
            "load_average": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "systems": results, "goals": checks},
                                         indent=2) + "\n")
    print(f"results: {args.out}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
