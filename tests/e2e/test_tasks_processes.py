"""Tasks through real ``pq worker --app ... --queues ...`` processes.

The application is a module written into tmp_path (the worker's working directory, which
``pq worker`` puts on its import path); the test declares the same tasks on its own Queue by
running that file, so ``.delay()`` here and the routing there use the same names.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistent_queue import JobState, Queue, TaskFailed
from tests.support import wait_for
from tests.task_apps import Workers, task, task_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APP = '''
import os
import time
from pathlib import Path

from persistent_queue import Queue, current_job

q = Queue(os.environ["TASKAPP_DB"])


@q.task(queue="math", name="add")
def add(a, b):
    return a + b


@q.task(queue="math", name="square")
def square(n):
    return {"n": n, "square": n * n}


@q.task(queue="text", name="upper")
def upper(text):
    return text.upper()


@q.task(queue="text", name="fail", max_attempts=2)
def fail(message):
    raise ValueError(message)


@q.task(queue="text", name="total")
def total():
    """A fan-in: the sum of its parents' results."""
    parents = current_job().dependency_results()
    return {"parents": sorted(parents), "sum": sum(parents.values())}


@q.task(queue="slow", name="wait_for_release")
def wait_for_release(n):
    """Blocks until the file $TASKAPP_DIR/release exists; records its start and end."""
    folder = Path(os.environ["TASKAPP_DIR"])
    job = current_job()
    (folder / f"started-{job.id}-{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while not (folder / "release").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("never released")
        time.sleep(0.05)
    with open(folder / "finished", "a") as out:
        out.write(f"{job.id}\\n")
    return n * 10
'''


@pytest.fixture
def app(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    """The task app as the test sees it: its Queue (with the tasks declared) on the db."""
    yield from task_app(APP, tmp_path, db_url, monkeypatch)


def test_a_thousand_tasks_of_three_kinds_over_two_queues_come_back_exactly(
        app: Queue, workers: Workers) -> None:
    add, square, upper = task(app, "add"), task(app, "square"), task(app, "upper")
    for _ in range(2):
        workers.start("--queues", "math,text", "--concurrency", "4")
    handles, expected = [], []
    for i in range(1000):
        kind = i % 3
        if kind == 0:
            handles.append(add.delay(i, 1))
            expected.append(i + 1)
        elif kind == 1:
            handles.append(square.delay(n=i))
            expected.append({"n": i, "square": i * i})
        else:
            handles.append(upper.delay(f"word {i}"))
            expected.append(f"WORD {i}")
    assert [h.result(timeout=120) for h in handles] == expected
    assert [app.result(h.id, timeout=1) for h in handles[:3]] == expected[:3]
    assert {h.job.queue for h in handles} == {"math", "text"}
    assert all(h.job.attempts == 1 for h in handles[::50])
    registered = [w for w in app.workers() if w.state == "running"]
    assert len(registered) == 2 and all(w.queues == ["math", "text"] for w in registered)


def test_a_failing_task_gives_task_failed_with_its_error(app: Queue, workers: Workers) -> None:
    workers.start("--queues", "text")
    handle = task(app, "fail").delay("the printer is on fire")
    with pytest.raises(TaskFailed) as failed:
        handle.result(timeout=60)
    assert failed.value.job_id == handle.id
    assert failed.value.error is not None
    assert failed.value.error.startswith("ValueError: the printer is on fire")
    assert handle.status is JobState.DEAD


def test_an_unknown_task_is_dead_lettered_with_its_reason(app: Queue,
                                                          workers: Workers) -> None:
    worker = workers.start("--queues", "math")
    job = app.enqueue("math", {"task": "no_such_task", "args": [], "kwargs": {}},
                      headers={"task": "no_such_task"}, max_attempts=2)
    with pytest.raises(TaskFailed) as failed:
        app.result(job.id, timeout=60)
    assert "unknown task 'no_such_task'" in (failed.value.error or "")
    (dead,) = app.dead_letters()
    assert dead.id == job.id and dead.attempts == 2
    assert dead.reason == "unknown task 'no_such_task'"
    assert dead.last_error is not None
    assert f"(worker consumer-{worker.pid}@" in dead.last_error
    assert dead.last_error.endswith("does not have it)")
    wait_for(lambda: f"which worker consumer-{worker.pid}@" in workers.logs(),
             message="the log to name the worker that lacked the task")


def test_a_fan_in_reads_its_parents_results(app: Queue, workers: Workers) -> None:
    workers.start("--queues", "math,text", "--concurrency", "2")
    add = task(app, "add")
    parents = [add.delay(1, 2), add.delay(3, 4), add.delay(5, 6)]
    fan_in = task(app, "total").options(depends_on=parents).delay()
    assert fan_in.result(timeout=60) == {"parents": sorted(p.id for p in parents), "sum": 21}


def test_a_worker_killed_mid_task_still_yields_every_result_once(
        app: Queue, workers: Workers, tmp_path: Path) -> None:
    first = workers.start("--queues", "slow", "--concurrency", "3",
                          "--visibility-timeout", "2")
    handles = [task(app, "wait_for_release").delay(n) for n in range(3)]
    wait_for(lambda: len(list(tmp_path.glob(f"started-*-{first.pid}"))) == 3, timeout=60,
             message="the first worker to be inside all three tasks")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(30)
    second = workers.start("--queues", "slow", "--concurrency", "3")
    (tmp_path / "release").touch()
    assert [h.result(timeout=60) for h in handles] == [0, 10, 20]
    finished = (tmp_path / "finished").read_text().split()
    assert sorted(finished) == sorted(str(h.id) for h in handles)  # each ran to its end once
    assert len(list(tmp_path.glob(f"started-*-{second.pid}"))) == 3
    assert all(h.job.attempts == 2 for h in handles)
