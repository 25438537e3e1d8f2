"""The crash drill: kill -9 real consumers mid-job and prove that no job is lost.

    python scripts/simulate_crash.py [--jobs 500] [--consumers 3] [--duration 15] [--poison]
                                     [--db data/drill.db | --db postgresql://user@host/db]

Enqueues N jobs, runs several real ``consumer.py`` processes, ``SIGKILL``s a random one every
so often (restarting it at once, as supervisord would), then lets the queue drain and prints
a report: enqueued, acked, lost, delivered more than once, dead-lettered and the result of
the database's integrity check (``PRAGMA integrity_check`` on SQLite, a consistency query on
PostgreSQL). ``--poison`` adds a job that kills every consumer that takes it;
it must end in the dead-letter table after its ``max_attempts``.

Exit codes: 0 nothing lost and the database intact, 1 a job was lost, the database is
damaged or the poison job did not end dead-lettered, 2 bad arguments.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import _common
import click

from persistent_queue import JobState, Queue
from persistent_queue.health import database_health

QUEUE = "drill"
POISON_ATTEMPTS = 3


class Fleet:
    """Consumer processes, restarted when they die (like supervisord's autorestart)."""

    def __init__(self, db: str, workdir: Path, count: int, concurrency: int) -> None:
        self.db, self.workdir, self.concurrency = db, workdir, concurrency
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.starts = 0
        self.kills = 0
        self.crashes = 0
        self.env = {**os.environ, "PQ_DRILL_RECORD": str(workdir / "completed.txt"),
                    "PYTHONPATH": str(_common.ROOT), "PYTHONUNBUFFERED": "1"}

    def start(self, index: int) -> None:
        """(Re)start consumer ``index``."""
        log = open(self.workdir / f"consumer-{index}.log", "ab")  # noqa: SIM115
        self.procs[index] = subprocess.Popen(
            [sys.executable, str(_common.ROOT / "consumer.py"), "--db", self.db,
             "--queue", QUEUE, "--handler", "persistent_queue.handlers:drill",
             "--concurrency", str(self.concurrency), "--wait", "0.5", "--durability", "normal",
             "--log-dir", str(self.workdir / "logs"), "--log-format", "text"],
            stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        self.starts += 1

    def restart_dead(self) -> None:
        """Restart every consumer that exited (killed by us or by a poison job)."""
        for index, proc in enumerate(self.procs):
            if proc is None:
                self.start(index)
            elif proc.poll() is not None:
                if proc.returncode == -signal.SIGKILL:
                    self.crashes += 1
                self.start(index)

    def kill_one(self, rng: random.Random) -> None:
        """SIGKILL a random running consumer (it may be mid-job: that is the point)."""
        alive = [p for p in self.procs if p is not None and p.poll() is None]
        if alive:
            victim = rng.choice(alive)
            victim.kill()
            victim.wait()
            self.kills += 1
            self.crashes -= 1  # counted again by restart_dead; keep crashes = self-inflicted

    def wait_ready(self, q: Queue, timeout: float = 60.0) -> None:
        """Wait until every consumer has registered (its signal handlers are in place)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = {w.pid for w in q.workers() if w.state == "running"}
            alive = [p for p in self.procs if p is not None and p.poll() is None]
            if all(p.pid in running for p in alive):
                return
            time.sleep(0.1)

    def stop(self) -> list[int]:
        """SIGTERM everyone (warm stop) and return their exit codes."""
        alive = [p for p in self.procs if p is not None and p.poll() is None]
        for proc in alive:
            proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in alive:
            try:
                codes.append(proc.wait(timeout=60))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        return codes


def _all_jobs(q: Queue) -> list[Any]:
    found, offset = [], 0
    while True:
        page = q.list_jobs(QUEUE, limit=5000, offset=offset, newest_first=False)
        found += page
        offset += len(page)
        if len(page) < 5000:
            return found


def _report(q: Queue, enqueued: set[int], poison_id: int | None, workdir: Path,
            fleet: Fleet, stop_codes: list[int], seconds: float) -> dict[str, Any]:
    jobs = _all_jobs(q)
    done = {j.id: j for j in jobs if j.state is JobState.DONE}
    pending = {j.id for j in jobs if j.state is not JobState.DONE}
    dead = {d.id: d for d in q.dead_letters(QUEUE, limit=10_000)}
    record = workdir / "completed.txt"
    runs = Counter(int(line) for line in record.read_text().split()) if record.exists() else {}
    lost = sorted(enqueued - set(done) - set(dead) - pending)
    health = database_health(q, integrity=True)
    report = {
        "enqueued": len(enqueued),
        "acked": len(done),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "still_pending": len(pending),
        "delivered_more_than_once": sum(1 for j in done.values() if j.attempts > 1),
        "handler_completed_more_than_once": sum(1 for n in runs.values() if n > 1),
        "dead_lettered": len(dead),
        "consumers_killed": fleet.kills,
        "consumers_killed_by_poison": max(fleet.crashes, 0),
        "consumer_starts": fleet.starts,
        "warm_stop_exit_codes": stop_codes,
        "integrity_check": health.integrity,
        "seconds": round(seconds, 1),
    }
    if poison_id is not None:
        letter = dead.get(poison_id)
        report["poison_job"] = {"id": poison_id, "dead_lettered": letter is not None,
                                "attempts": letter.attempts if letter else None,
                                "reason": letter.reason if letter else None}
    return report


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--jobs", "count", type=click.IntRange(1, 100_000), default=500, show_default=True)
@click.option("--consumers", type=click.IntRange(1, 32), default=3, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--duration", type=click.FloatRange(0, 3600), default=15.0, show_default=True,
              help="Seconds of killing before the queue is left to drain.")
@click.option("--kill-every", type=click.FloatRange(0.05, 60), default=0.7, show_default=True,
              help="Mean seconds between two kills.")
@click.option("--job-seconds", type=click.FloatRange(0, 60), default=0.05, show_default=True)
@click.option("--visibility-timeout", type=click.FloatRange(0.2, 3600), default=2.0,
              show_default=True, help="Lease length: how soon a killed job comes back.")
@click.option("--max-attempts", type=click.IntRange(1, 1000), default=25, show_default=True)
@click.option("--poison", is_flag=True, help="Add a job that kills every consumer taking it.")
@click.option("--db", default=None,
              help="Database file or postgresql:// URL [default: a new file in a temporary "
                   "directory]. Use an empty database: the drill counts every job in it.")
@click.option("--seed", type=int, default=None, help="Random seed (to repeat a run).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def main(count: int, consumers: int, concurrency: int, duration: float, kill_every: float,
         job_seconds: float, visibility_timeout: float, max_attempts: int, poison: bool,
         db: str | None, seed: int | None, as_json: bool) -> None:
    """Run the crash drill and print its report."""
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="pq-drill-"))
    db = db or str(workdir / "queue.db")
    started = time.monotonic()
    with Queue(db, durability="normal") as q:
        q.create_queue(QUEUE, max_attempts=max_attempts, visibility_timeout=visibility_timeout,
                       exist_ok=True)
        enqueued = {job.id for job in q.enqueue_many(QUEUE, [{"seconds": job_seconds}] * count)}
        poison_id = None
        if poison:
            poison_id = q.enqueue(QUEUE, {"poison": True}, priority=1,
                                  max_attempts=POISON_ATTEMPTS).id
            enqueued.add(poison_id)
        fleet = Fleet(db, workdir, consumers, concurrency)
        fleet.restart_dead()
        kill_until = time.monotonic() + duration
        while time.monotonic() < kill_until:
            time.sleep(rng.uniform(0.5, 1.5) * kill_every)
            fleet.kill_one(rng)
            fleet.restart_dead()
        drain_deadline = time.monotonic() + 120 + visibility_timeout * (POISON_ATTEMPTS + 2) \
            + count * job_seconds / (consumers * concurrency) * 3
        while time.monotonic() < drain_deadline:
            fleet.restart_dead()
            if q.stats(QUEUE).pending == 0:
                break
            time.sleep(0.2)
        fleet.wait_ready(q)
        stop_codes = fleet.stop()
        report = _report(q, enqueued, poison_id, workdir, fleet, stop_codes,
                         time.monotonic() - started)
    report["workdir"] = str(workdir)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            click.echo(f"{key.replace('_', ' '):<34} {value}")
    failed = report["lost"] or report["still_pending"] or report["integrity_check"] != "ok" \
        or (poison and not report["poison_job"]["dead_lettered"])
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
