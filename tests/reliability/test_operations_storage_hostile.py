"""Hostile checks of the operators' reads and writes of schema 9 (alerts, running jobs, lost
and pruned workers), on both backends: what held is covered by the feature's own tests; each
test here pinned a fault found by attacking it, and fails on the code before its fix."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from persistent_queue import Queue, config
from tests.migration_support import database_at_version
from tests.support import FakeClock, wait_for
from tests.task_apps import Workers

APP = '''
import os

from persistent_queue import Queue

q = Queue(os.environ["TASKAPP_DB"])
'''


@pytest.fixture
def workers(tmp_path: Path, db_url: str, subprocess_env: dict[str, str]) -> Iterator[Workers]:
    (tmp_path / "taskapp.py").write_text(APP)
    running = Workers(tmp_path, db_url, subprocess_env)
    yield running
    running.stop()


@pytest.mark.e2e
@pytest.mark.slow
def test_a_live_worker_pruned_registers_again_on_its_next_heartbeat(
    real_queue: Queue, workers: Workers, db_url: str, subprocess_env: dict[str, str]
) -> None:
    proc = workers.start("--queues", "work")
    me = wait_for(lambda: [w for w in real_queue.workers() if w.pid == proc.pid],
                  message="the worker registered")[0]

    # An operator's too eager threshold reads the live worker as lost and forgets it.
    pruned = subprocess.run(
        [sys.executable, "-m", "persistent_queue", "--db", db_url, "workers", "prune",
         "--older-than", "0s", "--lost-after", "0.001s"],
        env=subprocess_env, capture_output=True, text=True, timeout=60, check=False)
    assert (pruned.returncode, pruned.stdout.strip()) == (0, "removed 1 worker(s)"), pruned
    assert [w for w in real_queue.workers() if w.id == me.id] == []

    # Its next heartbeat (every 5 s) puts it back, as it was.
    again = wait_for(lambda: [w for w in real_queue.workers() if w.id == me.id],
                     timeout=30, message="the pruned worker back in the registry")[0]
    assert (again.kind, again.state, again.pid, again.queues) == (
        "consumer", "running", proc.pid, ["work"])
    assert proc.poll() is None, workers.logs()


@pytest.mark.sqlite_only
def test_reads_never_fail_busy_when_a_lease_to_reap_meets_a_held_write_lock(
    db_path: Path, clock: FakeClock
) -> None:
    """``alerts()`` and ``stats()`` reap expired last attempts first, a write: behind another
    process's write lock that had failed the read with DatabaseBusy."""
    with Queue(db_path, clock=clock, durability="normal", busy_timeout=0.2) as q:
        q.create_queue("q", max_attempts=1, alert_dead_letters=1)
        q.enqueue("q", "job")
        assert q.dequeue("q", worker="gone") is not None
        clock.advance(3600)  # its lease expired on its last attempt: the next read reaps it
        with closing(sqlite3.connect(db_path, isolation_level=None)) as writer:
            writer.execute("BEGIN IMMEDIATE")
            assert [(a.kind, a.firing) for a in q.alerts()] == [("dead_letters", False)]
            clock.advance(config.REAP_INTERVAL)
            stats = q.stats("q")
            assert (stats.expired, stats.dead) == (1, 0)
            assert q.running_jobs() == []
            writer.execute("ROLLBACK")
        clock.advance(config.REAP_INTERVAL)  # the lock gone, the next read reaps it
        assert [(a.kind, a.firing) for a in q.alerts()] == [("dead_letters", True)]


#: A version 8 database's rows: JOBS jobs in each state over 7 queues, and WORKERS workers,
#: a third of them stored 'dead' (as version 8 wrote silent ones), a third stopped.
JOBS, WORKERS = 2_000, 30_000  # as V8_FILL writes them
V8_FILL = [
    """INSERT INTO jobs (queue, state, payload, attempts, available_at, created_at, updated_at,
                         lease_token, lease_expires_at, finished_at)
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
    SELECT 'q' || (i % 7), s.state, '1', CASE WHEN s.state = 'waiting' THEN 0 ELSE 1 END, 1, 1,
           1, CASE WHEN s.state = 'leased' THEN 't' || i END,
           CASE WHEN s.state = 'leased' THEN 1e10 END,
           CASE WHEN s.state IN ('done', 'cancelled') THEN 2 END
    FROM n, (SELECT 'waiting' AS state UNION ALL SELECT 'ready' UNION ALL SELECT 'leased'
             UNION ALL SELECT 'done' UNION ALL SELECT 'cancelled') AS s""",
    """INSERT INTO workers (id, kind, host, pid, queues, state, started_at, heartbeat_at,
                            stopped_at)
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000)
    SELECT 'w' || i, 'consumer', 'h', i, '[]',
           CASE i % 3 WHEN 0 THEN 'dead' WHEN 1 THEN 'stopped' ELSE 'running' END, 1, 2,
           CASE WHEN i % 3 < 2 THEN 2 END
    FROM n""",
]

#: Opens the database given, after the file named second appears (SQLite) or at once; with a
#: third argument, kills itself with SIGKILL inside migration 9, after its last statement
#: and before the new version is recorded.
OPENER = """
import os, signal, sys, time
from persistent_queue import Queue
from persistent_queue.storage.sqlite import connection

real = connection._split_statements

def split(script):
    for statement in real(script):
        yield statement
        if "WHERE state = 'dead'" in statement:
            os.kill(os.getpid(), signal.SIGKILL)

if len(sys.argv) > 3:
    connection._split_statements = split
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
    time.sleep(0.005)
with Queue(sys.argv[1]) as q:
    print(q.schema_version(), sum(s.waiting for s in q.stats().values()))
"""


@pytest.fixture
def v8_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    return database_at_version(request, backend, tmp_path, 8, V8_FILL)


def _opener(target: Path | str, go: Path, env: dict[str, str],
            *kill: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", OPENER, str(target), str(go), *kill],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_migrated_intact(target: Path | str) -> None:
    with Queue(target, durability="normal", clock=FakeClock(100.0)) as q:
        assert q.schema_version() == 9
        stats = q.stats()
        assert sorted(stats) == [f"q{i}" for i in range(7)]
        totals = [sum(getattr(s, state) for s in stats.values())
                  for state in ("waiting", "ready", "leased", "done", "cancelled")]
        assert totals == [JOBS] * 5
        states: dict[str, int] = {}
        for worker in q.workers(stale_after=1):
            states[worker.state] = states.get(worker.state, 0) + 1
        assert states == {"lost": 2 * WORKERS // 3, "stopped": WORKERS // 3}
        assert q.check_integrity() == []


@pytest.mark.sqlite_only
def test_migration_9_killed_midway_is_rolled_back_and_runs_again(
    v8_database: Path, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    (tmp_path / "go").touch()
    killed = _opener(v8_database, tmp_path / "go", subprocess_env, "kill")
    assert killed.wait(60) == -signal.SIGKILL, killed.communicate()
    with closing(sqlite3.connect(v8_database)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (8,)
        assert conn.execute("SELECT count(*) FROM workers WHERE state = 'dead'"
                            ).fetchone() == (WORKERS // 3,)
    _assert_migrated_intact(v8_database)


def test_two_processes_opening_a_version_8_database_at_once_both_succeed(
    v8_database: Path | str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    go = tmp_path / "go"
    openers = [_opener(v8_database, go, subprocess_env) for _ in range(2)]
    go.touch()
    for opener in openers:
        out, err = opener.communicate(timeout=120)
        assert (opener.returncode, out.split()) == (0, ["9", str(JOBS)]), err
    _assert_migrated_intact(v8_database)


def test_jobs_running_in_an_unknown_queue_are_refused_not_an_empty_list(
    real_queue: Queue, db_url: str, subprocess_env: dict[str, str]
) -> None:
    """A mistyped queue name had read as "nothing running" (library, pq busy, GET /busy);
    it is QueueNotFound, as for alerts() and stats()."""
    from fastapi.testclient import TestClient

    from persistent_queue.api import create_app
    from persistent_queue.errors import QueueNotFound

    real_queue.enqueue("emails", "a")
    assert real_queue.dequeue("emails", worker="w1") is not None
    assert [job.queue for job in real_queue.running_jobs("emails")] == ["emails"]
    with pytest.raises(QueueNotFound, match="emials"):
        real_queue.running_jobs("emials")

    busy = subprocess.run(
        [sys.executable, "-m", "persistent_queue", "--db", db_url, "busy", "--queue", "emials"],
        env=subprocess_env, capture_output=True, text=True, timeout=60, check=False)
    assert (busy.returncode, busy.stderr.strip()) == (1, "error: no queue named 'emials'")

    with TestClient(create_app(real_queue)) as client:
        answer = client.get("/busy?queue=emials")
        assert (answer.status_code, answer.json()["error"]) == (404, "queue_not_found")
        assert len(client.get("/busy?queue=emails").json()) == 1


def test_a_heartbeat_registers_again_only_a_process_this_queue_registered(
    queue: Queue, db_path: Path | str
) -> None:
    queue.register_worker("mine", kind="scheduler", queues=["a"], pid=42)
    queue.heartbeat_worker("mine", processed=3)
    with Queue(db_path, durability="normal") as operator:
        assert operator.prune_workers(0, stale_after=1e-9) == 1
        operator.heartbeat_worker("mine", processed=1)  # not its process: nothing invented
        assert operator.workers() == []
    queue.heartbeat_worker("mine", processed=2, failed=1)
    (back,) = queue.workers()
    assert (back.id, back.kind, back.pid, back.queues, back.state, back.processed,
            back.failed) == ("mine", "scheduler", 42, ["a"], "running", 2, 1)
    queue.stop_worker("mine")
    with Queue(db_path, durability="normal") as operator:
        assert operator.prune_workers(0) == 1
    queue.heartbeat_worker("mine")  # stopped: it stays forgotten
    assert queue.workers() == []


def test_metrics_of_many_queues_export_one_series_per_alert_with_its_values(
    queue: Queue,
) -> None:
    from fastapi.testclient import TestClient
    from prometheus_client.parser import text_string_to_metric_families

    from persistent_queue.api import create_app

    for i in range(40):
        queue.create_queue(f"q.{i:02d}-x_", alert_depth=2**62 if i % 2 else 2,
                           alert_oldest_age=30, alert_failure_rate=1, alert_dead_letters=1)
        queue.enqueue_many(f"q.{i:02d}-x_", [1, 2] if i % 4 == 0 else [1])
    queue.create_queue("plain")
    queue.enqueue("plain", 1)
    with TestClient(create_app(queue)) as client:
        text = client.get("/metrics").text
    series: dict[str, dict[tuple[str, str], float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("pq_queue_alert_"):
            found = series.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.labels["queue"], sample.labels["kind"])
                assert key not in found and set(sample.labels) == {"queue", "kind"}
                found[key] = sample.value
    kinds = ("depth", "oldest_age", "failure_rate", "dead_letters")
    expected = {(f"q.{i:02d}-x_", kind) for i in range(40) for kind in kinds}
    assert {name: set(found) for name, found in series.items()} == {
        f"pq_queue_alert_{name}": expected for name in ("firing", "threshold", "value")}
    for i in range(40):
        depth = (f"q.{i:02d}-x_", "depth")
        assert series["pq_queue_alert_value"][depth] == (2 if i % 4 == 0 else 1)
        assert series["pq_queue_alert_threshold"][depth] == float(2**62 if i % 2 else 2)
        assert series["pq_queue_alert_firing"][depth] == (1 if i % 4 == 0 else 0)
        assert series["pq_queue_alert_firing"][(f"q.{i:02d}-x_", "oldest_age")] == 0
