"""The effects drill: kill -9 workers whose handlers write to the database, count the effects.

    python scripts/effects_drill.py [--mode joined|separate] [--jobs 300] [--workers 3]
                                    [--duration 6] [--db data/effects.db | --db postgresql://...]

Each worker claims a job, inserts one row for it in the application's table ``drill_effects``
(its effect), does ``--gap`` seconds of the rest of its work, and acks. ``joined``: the effect
and the ack are one transaction of the application's connection (``q.ack(job,
connection=conn)``), so they commit together or not at all. ``separate``: the effect commits
first and the ack follows on its own, as with any queue outside the application's database;
a worker killed between the two leaves an effect whose job is claimed and run again.

A worker holding a job (its pid in the job's ``claimed_by``) is killed with SIGKILL every
``--kill-every`` seconds (and restarted at once) for ``--duration`` seconds, or until every job
is acked; then the queue drains and the report counts, per job: acked, effects missing (acked
with no effect row), duplicated (more than one effect row), lost (never acked), and how many
jobs were claimed more than once (a kill landed mid-job).

Exit codes: 0 every job acked with exactly one effect (``joined``), or with at least one
(``separate``, where duplicates are what it measures); 1 otherwise; 2 bad arguments.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import click

from persistent_queue import JobState, LeaseLost, Queue

QUEUE = "effects"


def _app_connection(db: str) -> Any:
    """The application's own connection to the queue's database, in autocommit mode (each
    transaction begun and ended explicitly)."""
    if db.startswith(("postgresql://", "postgres://")):
        import psycopg

        return psycopg.connect(db, autocommit=True)
    conn = sqlite3.connect(db, isolation_level=None, timeout=60)
    conn.execute("PRAGMA synchronous = NORMAL")  # as the queue's durability="normal"
    return conn


def work(db: str, mode: str, gap: float) -> None:
    """A worker: claim, write the effect, ack; forever (until killed)."""
    sqlite = isinstance(app := _app_connection(db), sqlite3.Connection)
    begin = "BEGIN IMMEDIATE" if sqlite else "BEGIN"
    insert = ("INSERT INTO drill_effects (job_id, pid) VALUES (?, ?)" if sqlite else
              "INSERT INTO drill_effects (job_id, pid) VALUES (%s, %s)")
    q = Queue(db, durability="normal")
    while True:
        job = q.dequeue(QUEUE, wait=1)
        if job is None:
            continue
        app.execute(begin)
        app.execute(insert, (job.id, os.getpid()))
        if mode == "joined":
            time.sleep(gap)  # the rest of the handler's work, inside its transaction
            try:
                q.ack(job, connection=app)
            except LeaseLost:
                app.execute("ROLLBACK")  # another worker holds the job now: it writes the effect
                continue
            app.execute("COMMIT")
        else:
            app.execute("COMMIT")
            time.sleep(gap)  # the rest of the handler's work, after its effect is committed
            try:
                q.ack(job)
            except LeaseLost:
                pass


class Workers:
    """Worker processes, restarted when they die (like supervisord's autorestart)."""

    def __init__(self, db: str, count: int, mode: str, gap: float, log: Path) -> None:
        self.command = [sys.executable, __file__, "--db", db, "--mode", mode, "--gap", str(gap),
                        "--worker"]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.log = log
        self.env = {**os.environ, "PYTHONPATH": str(_common.ROOT), "PYTHONUNBUFFERED": "1"}
        self.kills = 0

    def restart_dead(self) -> None:
        for index, proc in enumerate(self.procs):
            if proc is None or proc.poll() is not None:
                with self.log.open("ab") as log:
                    self.procs[index] = subprocess.Popen(self.command, stdout=log,
                                                         stderr=subprocess.STDOUT, env=self.env)

    def kill_one(self, rng: random.Random, busy: set[int]) -> None:
        """SIGKILL a random worker, one holding a job (pid in ``busy``) if there is one."""
        alive = [p for p in self.procs if p is not None and p.poll() is None]
        alive = [p for p in alive if p.pid in busy] or alive
        if alive:
            victim = rng.choice(alive)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            self.kills += 1

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()


def _busy(q: Queue) -> set[int]:
    """The pids of the workers holding a job now (its ``claimed_by``, ``pid@host``)."""
    leased = q.list_jobs(QUEUE, state=JobState.LEASED, limit=100)
    return {int(job.claimed_by.split("@")[0]) for job in leased
            if job.claimed_by and job.claimed_by.split("@")[0].isdigit()}


def drill(db: str, *, mode: str, jobs: int, workers: int, duration: float, kill_every: float,
          gap: float, visibility_timeout: float, seed: int | None, workdir: Path) -> dict[str, Any]:
    """Run the drill on an empty database ``db``; its report."""
    rng = random.Random(seed)
    started = time.monotonic()
    with Queue(db, durability="normal") as q:  # creates the queue's schema in the app's file
        app = _app_connection(db)
        app.execute("DROP TABLE IF EXISTS drill_effects")
        app.execute("CREATE TABLE drill_effects (job_id BIGINT NOT NULL, pid INTEGER NOT NULL)")
        # Kills must never use up a job's attempts: every job is to end acked.
        q.create_queue(QUEUE, max_attempts=1000, visibility_timeout=visibility_timeout,
                       exist_ok=True)
        enqueued = {job.id for job in q.enqueue_many(QUEUE, [{"n": n} for n in range(jobs)])}
        fleet = Workers(db, workers, mode, gap, workdir / "workers.log")
        try:
            fleet.restart_dead()
            kill_until = time.monotonic() + duration
            while time.monotonic() < kill_until and q.stats(QUEUE).pending:
                time.sleep(rng.uniform(0.5, 1.5) * kill_every)
                fleet.kill_one(rng, _busy(q))
                fleet.restart_dead()
            drain_deadline = time.monotonic() + 120 + jobs * (gap + 0.05)
            while time.monotonic() < drain_deadline and q.stats(QUEUE).pending:
                fleet.restart_dead()
                time.sleep(0.1)
        finally:
            fleet.stop()
        done = {job.id: job for job in q.list_jobs(QUEUE, limit=10_000)
                if job.state is JobState.DONE}
        effects: dict[int, int] = {}
        for job_id, count in app.execute(
                "SELECT job_id, COUNT(*) FROM drill_effects GROUP BY job_id").fetchall():
            effects[int(job_id)] = int(count)
        app.close()
    return {
        "mode": mode,
        "backend": "postgresql" if db.startswith(("postgresql://", "postgres://")) else "sqlite",
        "jobs": len(enqueued),
        "acked": len(done),
        "lost": len(enqueued - set(done)),
        "effects_missing": sum(1 for job_id in done if job_id not in effects),
        "effects_duplicated": sum(1 for count in effects.values() if count > 1),
        "extra_effects": sum(count - 1 for count in effects.values() if count > 1),
        "claimed_more_than_once": sum(1 for job in done.values() if job.attempts > 1),
        "workers_killed": fleet.kills,
        "seconds": round(time.monotonic() - started, 1),
    }


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--mode", type=click.Choice(["joined", "separate"]), default="joined",
              show_default=True, help="joined: the effect and the ack in one transaction; "
                                      "separate: the ack after the effect's commit.")
@click.option("--jobs", type=click.IntRange(1, 10_000), default=300, show_default=True)
@click.option("--workers", type=click.IntRange(1, 32), default=3, show_default=True)
@click.option("--duration", type=click.FloatRange(0, 3600), default=6.0, show_default=True,
              help="Seconds of killing (at most) before the queue is left to drain.")
@click.option("--kill-every", type=click.FloatRange(0.05, 60), default=0.3, show_default=True,
              help="Mean seconds between two kills.")
@click.option("--gap", type=click.FloatRange(0, 10), default=0.02, show_default=True,
              help="Seconds of the handler's other work between its effect and its ack.")
@click.option("--visibility-timeout", type=click.FloatRange(0.2, 3600), default=1.0,
              show_default=True, help="Lease length: how soon a killed job comes back.")
@click.option("--db", default=None,
              help="Database file or postgresql:// URL [default: a new file in a temporary "
                   "directory]. Use an empty database: the drill counts every job in it.")
@click.option("--seed", type=int, default=None, help="Random seed (to repeat a run).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--worker", is_flag=True, hidden=True, help="Run as one worker (internal).")
def main(mode: str, jobs: int, workers: int, duration: float, kill_every: float, gap: float,
         visibility_timeout: float, db: str | None, seed: int | None, as_json: bool,
         worker: bool) -> None:
    """Run the effects drill and print its report."""
    if worker:
        assert db is not None
        work(db, mode, gap)
        return
    workdir = Path(tempfile.mkdtemp(prefix="pq-effects-"))
    report = drill(db or str(workdir / "app.db"), mode=mode, jobs=jobs, workers=workers,
                   duration=duration, kill_every=kill_every, gap=gap,
                   visibility_timeout=visibility_timeout, seed=seed, workdir=workdir)
    report["workdir"] = str(workdir)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            click.echo(f"{key.replace('_', ' '):<24} {value}")
    exact = report["effects_duplicated"] == 0 or mode == "separate"
    sys.exit(0 if exact and not report["lost"] and not report["effects_missing"] else 1)


if __name__ == "__main__":
    main()
