"""``async def`` tasks in real ``pq worker --app ...`` processes: many at once on one event
loop, timeouts and cancellation as asyncio cancellation, sync and async tasks side by side."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import JobState, Queue, TaskFailed
from tests.support import wait_for
from tests.task_apps import task_app

pytestmark = [pytest.mark.slow]

APP = '''
import asyncio
import os
import threading
import time
from pathlib import Path

from persistent_queue import Queue, current_job

q = Queue(os.environ["TASKAPP_DB"])
folder = Path(os.environ["TASKAPP_DIR"])


@q.task(queue="io", name="nap")
async def nap(seconds):
    started = time.time()
    await asyncio.sleep(seconds)
    return {"started": started, "finished": time.time(), "thread": threading.get_ident()}


@q.task(queue="io", name="hang", timeout=1, max_attempts=1)
async def hang():
    try:
        await asyncio.sleep(600)
    except asyncio.CancelledError:
        (folder / f"cancelled-{current_job().id}").touch()
        raise


@q.task(queue="io", name="stubborn")
async def stubborn():
    (folder / f"started-{current_job().id}").touch()
    await asyncio.sleep(600)


@q.task(queue="io", name="polite")
async def polite():
    (folder / f"started-{current_job().id}").touch()
    while True:
        current_job().raise_if_cancelled()
        await asyncio.sleep(0.02)


@q.task(queue="io", name="plain")
def plain(x):
    return {"x": x, "thread": threading.get_ident()}
'''


@pytest.fixture
def app(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    yield from task_app(APP, tmp_path, db_url, monkeypatch)


@pytest.fixture
def worker(tmp_path: Path, db_url: str, subprocess_env: dict[str, str]
           ) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []
    env = {**subprocess_env, "TASKAPP_DB": db_url, "TASKAPP_DIR": str(tmp_path)}

    def start(*flags: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / "worker.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "persistent_queue", "worker", "--db", db_url,
                 "--app", "taskapp:q", "--queues", "io", "--wait", "0.5", "--log-dir", "",
                 "--log-format", "text", *flags],
                cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def task(app: Queue, name: str) -> Any:
    return app.tasks.get(name)


def test_two_hundred_async_tasks_run_at_once_in_one_worker(app: Queue, worker: Any) -> None:
    nap = task(app, "nap")
    handles = [nap.delay(1) for _ in range(200)]
    worker("--concurrency", "200")
    results = [h.result(timeout=120) for h in handles]
    span = max(r["finished"] for r in results) - min(r["started"] for r in results)
    assert span < 10, f"200 one-second naps took {span:.1f} s"
    assert len({r["thread"] for r in results}) == 1  # one event loop
    # Most of them overlapped: at the middle start, how many were running?
    starts = sorted(r["started"] for r in results)
    middle = starts[100]
    running = sum(r["started"] <= middle < r["finished"] for r in results)
    assert running > 50


def test_an_async_task_past_its_timeout_is_cancelled(
        app: Queue, worker: Any, tmp_path: Path) -> None:
    worker("--concurrency", "4")
    handle = task(app, "hang").delay()
    started = time.monotonic()
    with pytest.raises(TaskFailed) as failed:
        handle.result(timeout=60)
    assert failed.value.error == "timed out after 1 s"
    assert time.monotonic() - started < 30
    assert (tmp_path / f"cancelled-{handle.id}").exists()  # the coroutine saw CancelledError
    assert handle.status is JobState.DEAD


def test_cancellation_requests_reach_async_tasks(
        app: Queue, worker: Any, tmp_path: Path) -> None:
    worker("--concurrency", "4", "--cancel-grace", "1")
    polite, stubborn = task(app, "polite").delay(), task(app, "stubborn").delay()
    for handle in (polite, stubborn):
        wait_for(lambda h=handle: (tmp_path / f"started-{h.id}").exists(), timeout=60,
                 message=f"job {handle.id} to start")
        app.cancel(handle.id, reason="not needed")
    for handle in (polite, stubborn):
        wait_for(lambda h=handle: h.status is JobState.CANCELLED, timeout=60,
                 message=f"job {handle.id} cancelled")
        with pytest.raises(TaskFailed, match="not needed"):
            handle.result(timeout=1)


def test_sync_and_async_tasks_mix_and_a_warm_stop_finishes_async_jobs(
        app: Queue, worker: Any) -> None:
    naps = [task(app, "nap").delay(0.5) for _ in range(10)]
    plains = [task(app, "plain").delay(i) for i in range(10)]
    proc = worker("--concurrency", "20")
    assert [h.result(timeout=60)["x"] for h in plains] == list(range(10))
    loop_threads = {h.result(timeout=60)["thread"] for h in naps}
    assert len(loop_threads) == 1
    assert loop_threads.isdisjoint({h.result(timeout=1)["thread"] for h in plains})

    more = [task(app, "nap").delay(2) for _ in range(5)]
    wait_for(lambda: all(h.status is JobState.LEASED for h in more), timeout=60,
             message="the naps to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    assert all(h.status is JobState.DONE for h in more)


def test_the_process_executor_runs_an_async_task_on_a_loop_in_its_child(
        app: Queue, worker: Any) -> None:
    worker("--executor", "process", "--concurrency", "2")
    handles = [task(app, "nap").delay(0.1) for _ in range(4)]
    assert all(h.result(timeout=120)["finished"] > 0 for h in handles)


def test_leases_of_long_async_tasks_are_renewed(app: Queue, worker: Any) -> None:
    worker("--concurrency", "10", "--visibility-timeout", "1")
    handles = [task(app, "nap").delay(3) for _ in range(5)]
    assert all(h.result(timeout=60)["finished"] for h in handles)
    assert all(h.job.attempts == 1 for h in handles)  # never claimed again meanwhile


def test_a_cold_stop_gives_async_jobs_back(app: Queue, worker: Any, tmp_path: Path) -> None:
    proc = worker("--concurrency", "10")
    handles = [task(app, "stubborn").delay() for _ in range(3)]
    for handle in handles:
        wait_for(lambda h=handle: (tmp_path / f"started-{h.id}").exists(), timeout=60,
                 message=f"job {handle.id} to start")
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "finishing 3 job(s)" in (tmp_path / "worker.log").read_text(),
             timeout=30, message="the warm stop to begin")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 3
    assert all(h.status is JobState.READY for h in handles)
    assert "Task was destroyed" not in (tmp_path / "worker.log").read_text()
