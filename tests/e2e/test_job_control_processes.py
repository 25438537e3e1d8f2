"""Control of running jobs through real ``pq worker`` processes: timeouts, a handler that
holds the GIL, cancellation of queued and running jobs, progress.

Each test runs with both executors where the behaviour is promised for both: ``thread``
(handlers in the worker process) and ``process`` (handlers in child processes the worker
can kill).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistent_queue import JobState, Queue
from tests.support import wait_for
from tests.task_apps import Workers, task, task_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APP = '''
import os
import re
import time
from pathlib import Path

from persistent_queue import Queue, current_job

q = Queue(os.environ["TASKAPP_DB"])
FOLDER = Path(os.environ["TASKAPP_DIR"])


def record(name):
    """Append this job's id to FOLDER/name: one line per run that got that far."""
    with open(FOLDER / name, "a") as out:
        out.write(f"{current_job().id}\\n")


@q.task(queue="control", name="nap", timeout=2, max_attempts=1)
def nap(seconds):
    record("started")
    time.sleep(seconds)
    record("finished")


@q.task(queue="gil", name="backtrack")
def backtrack(n):
    """Holds the GIL for seconds: a catastrophic regex is one long call into C."""
    record("started")
    re.match(r"(a+)+$", "a" * n + "b")
    record("finished")
    return n


@q.task(queue="control", name="steps")
def steps(count):
    """Reports its progress and stops when cancelled (cooperatively)."""
    record("started")
    job = current_job()
    for i in range(count):
        job.set_progress(i / count, message=f"step {i}")
        job.raise_if_cancelled()
        time.sleep(0.05)
    record("finished")
    return count


@q.task(queue="control", name="stubborn")
def stubborn():
    """Ignores cancellation: only a kill stops it."""
    record("started")
    time.sleep(600)
'''

EXECUTORS = ["thread", "process"]


@pytest.fixture
def app(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    yield from task_app(APP, tmp_path, db_url, monkeypatch)


def runs(tmp_path: Path, name: str) -> list[int]:
    path = tmp_path / name
    return [int(line) for line in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_handler_past_its_timeout_fails_with_timed_out(
        app: Queue, workers: Workers, tmp_path: Path, executor: str) -> None:
    handle = task(app, "nap").delay(600)
    workers.start("--queues", "control", "--executor", executor)
    dead = wait_for(lambda: next(iter(app.dead_letters("control")), None), timeout=60,
                    message="the timed-out job's dead letter")
    assert dead.id == handle.id
    assert dead.last_error == "timed out after 2 s"
    started = app.history(handle.id)
    claimed = next(e for e in started if e.event == "claimed")
    assert dead.dead_at - claimed.at < 6, "stopped at its 2 s timeout, not long after"
    assert runs(tmp_path, "started") == [handle.id]
    assert runs(tmp_path, "finished") == []


def test_a_gil_holding_handler_in_the_process_executor_runs_once_and_is_acked(
        app: Queue, workers: Workers, tmp_path: Path) -> None:
    app.create_queue("gil", visibility_timeout=2)
    handle = task(app, "backtrack").delay(27)  # ~5 s in C on this machine, GIL held
    for _ in range(2):  # a second consumer would take the job if its lease lapsed
        workers.start("--queues", "gil", "--executor", "process", "--wait", "0.2")
    assert handle.result(timeout=120) == 27
    job = app.get_job(handle.id)
    assert job.state is JobState.DONE and job.attempts == 1
    assert runs(tmp_path, "started") == [handle.id], "started exactly once"
    assert not list(app.dead_letters("gil"))
    assert "lost the lease" not in workers.logs()


def test_a_gil_holding_handler_in_the_thread_executor_is_noticed(
        app: Queue, workers: Workers, tmp_path: Path) -> None:
    """What --executor thread cannot prevent, it reports: its control thread was starved."""
    app.create_queue("gil", visibility_timeout=2)
    task(app, "backtrack").delay(27)
    workers.start("--queues", "gil", "--executor", "thread")
    wait_for(lambda: runs(tmp_path, "finished"), timeout=120, message="the handler's end")
    wait_for(lambda: "control thread could not run" in workers.logs(), timeout=30,
             message="the starvation warning")


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_running_job_cancelled_stops_and_ends_cancelled(
        app: Queue, workers: Workers, tmp_path: Path, executor: str) -> None:
    handle = task(app, "steps").delay(100_000)
    workers.start("--queues", "control", "--executor", executor)
    wait_for(lambda: app.get_job(handle.id).progress is not None, timeout=60,
             message="progress from the running handler")
    fraction, message = app.get_job(handle.id).progress
    assert 0 <= fraction < 1 and message is not None and message.startswith("step ")
    requested = app.cancel(handle.id, reason="wrong day")
    assert requested.state is JobState.LEASED and requested.cancel_requested
    job = wait_for(lambda: (j := app.get_job(handle.id)).state is JobState.CANCELLED and j,
                   timeout=30, message="the job to end cancelled")
    assert job.cancel_reason == "wrong day"
    assert runs(tmp_path, "finished") == []
    assert [e.event for e in app.history(handle.id)][-1] == "cancelled"


def test_an_uncooperative_handler_is_killed_after_the_grace_period(
        app: Queue, workers: Workers, tmp_path: Path) -> None:
    handle = task(app, "stubborn").delay()
    after = task(app, "steps").delay(1)
    workers.start("--queues", "control", "--executor", "process", "--cancel-grace", "1")
    wait_for(lambda: handle.id in runs(tmp_path, "started"), timeout=60,
             message="the stubborn handler to start")
    app.cancel(handle.id)
    wait_for(lambda: app.get_job(handle.id).state is JobState.CANCELLED, timeout=30,
             message="the stubborn job cancelled")
    assert after.result(timeout=60) == 1, "the slot's new child runs the next job"


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_queued_job_cancelled_never_runs(
        app: Queue, workers: Workers, tmp_path: Path, executor: str) -> None:
    steps = task(app, "steps")
    cancelled = steps.delay(1)
    assert app.cancel(cancelled.id).state is JobState.CANCELLED
    marker = steps.delay(1)
    workers.start("--queues", "control", "--executor", executor)
    assert marker.result(timeout=60) == 1
    assert cancelled.id not in runs(tmp_path, "started")
    assert app.get_job(cancelled.id).state is JobState.CANCELLED
    assert os.path.exists(tmp_path / "started")
