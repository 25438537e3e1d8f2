"""Hostile checks of the operators' reads and writes of schema 9 (alerts, running jobs, lost
and pruned workers), on both backends: what held is covered by the feature's own tests; each
test here pinned a fault found by attacking it, and fails on the code before its fix."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from persistent_queue import Queue, config
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
