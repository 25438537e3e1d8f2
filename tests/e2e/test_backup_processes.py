"""``pq backup`` of a live database under load, and ``pq restore`` against running processes.

Real processes throughout: a producer and two consumers (tests/e2e/backup_load.py) write while
``pq backup`` copies; ``pq worker`` holds the database open while ``pq restore`` is refused.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import Queue
from tests.support import wait_for
from tests.task_apps import Workers, task_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.sqlite_only]

LOAD = Path(__file__).with_name("backup_load.py")

APP = '''
import os

from persistent_queue import Queue

q = Queue(os.environ["TASKAPP_DB"])


@q.task(queue="work", name="noop")
def noop():
    return None
'''


def pq(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "persistent_queue", "--db", str(db), *args],
                          capture_output=True, text=True, timeout=120, cwd=db.parent)


def acked(logs: list[Path]) -> set[int]:
    ids: set[int] = set()
    for log in logs:
        if log.exists():
            ids.update(int(line) for line in log.read_text().split("\n")[:-1])
    return ids


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def load(tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(30)


def start(procs: list[subprocess.Popen[bytes]], env: dict[str, str], *args: str) -> None:
    procs.append(subprocess.Popen([sys.executable, str(LOAD), *args], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def test_backup_under_load_holds_every_acked_job_and_can_be_consumed(
        tmp_path: Path, load: list[subprocess.Popen[bytes]],
        subprocess_env: dict[str, str]) -> None:
    db, copy = tmp_path / "queue.db", tmp_path / "backups" / "copy.db"
    copy.parent.mkdir()
    with Queue(db, durability="normal") as q:  # some bulk: the copy takes a while
        for _ in range(20):
            q.enqueue_many("bulk", [{"pad": "y" * 300}] * 1000)
    logs = [tmp_path / "acked-0.log", tmp_path / "acked-1.log"]
    start(load, subprocess_env, "producer", str(db))
    for log in logs:
        start(load, subprocess_env, "consumer", str(db), str(log))
    wait_for(lambda: len(acked(logs)) >= 300, timeout=60, message="300 acks under load")

    before = acked(logs)  # every ack that returned before the backup began
    done = pq(db, "backup", str(copy))
    assert done.returncode == 0, done.stderr
    assert "integrity ok" in done.stdout and "jobs" in done.stdout
    wait_for(lambda: len(acked(logs)) > len(before) + 50, timeout=60,
             message="acks going on after the backup")
    assert all(p.poll() is None for p in load), "a load process died"

    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]
    assert not Path(f"{copy}-wal").exists()
    assert not list(copy.parent.glob("*.partial"))
    states: dict[int, str] = dict(rows(copy, "SELECT id, state FROM jobs WHERE queue = 'load'"))
    missing = [i for i in before if states.get(i) != "done"]
    assert not missing, f"{len(missing)} acked jobs not done in the copy, e.g. {missing[:5]}"

    with Queue(copy, durability="normal") as restored:
        job = restored.dequeue("load")
        assert job is not None
        restored.ack(job)
        assert restored.stats("load").done >= len(before) + 1


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    yield from task_app(APP, tmp_path, str(tmp_path / "queue.db"), monkeypatch)


def test_restore_is_refused_while_a_worker_runs_and_works_once_it_stopped(
        tmp_path: Path, app: Queue, subprocess_env: dict[str, str],
        load: list[subprocess.Popen[bytes]]) -> None:
    db, copy = tmp_path / "queue.db", tmp_path / "copy.db"
    app.enqueue("keep", {"in": "backup"})
    app.close()
    assert pq(db, "backup", str(copy)).returncode == 0
    with Queue(db) as q:
        q.enqueue("keep", {"in": "live only"})

    workers = Workers(tmp_path, str(db), subprocess_env)
    worker = workers.start("--queues", "work")
    try:
        with Queue(db) as q:
            wait_for(lambda: any(w.state == "running" for w in q.workers()), timeout=60,
                     message="the worker's registration")
        refused = pq(db, "restore", str(copy))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "in use" in refused.stderr and "Traceback" not in refused.stderr
    finally:
        workers.stop()
    assert worker.returncode == 0, workers.logs()
    assert rows(db, "SELECT count(*) FROM jobs") == [(2,)]  # untouched

    # A process with the database open but no heartbeat (a consumer of the library): the
    # -shm lock tells.
    start(load, subprocess_env, "consumer", str(db), str(tmp_path / "acked.log"))
    wait_for(lambda: Path(f"{db}-shm").exists() and load[0].poll() is None, timeout=30,
             message="the consumer's connection")
    wait_for(lambda: "another process" in pq(db, "restore", str(copy)).stderr, timeout=30,
             message="restore refused while the consumer has the database open")
    load[0].send_signal(signal.SIGTERM)
    load[0].wait(30)

    done = pq(db, "restore", str(copy))
    assert done.returncode == 0, done.stderr
    kept = list(tmp_path.glob("queue.db.before-restore-*"))
    assert len(kept) == 1 and str(kept[0]) in done.stdout
    assert rows(kept[0], "SELECT count(*) FROM jobs") == [(2,)]
    with Queue(db) as q:
        assert [j.payload for j in q.list_jobs("keep")] == [{"in": "backup"}]
