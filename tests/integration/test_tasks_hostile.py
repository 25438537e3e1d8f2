"""Tasks under hostile use, in process: odd task names over HTTP, and the promises that held
when tried (reserved-looking keyword arguments, dead parents, results that are not JSON)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from persistent_queue import JobState, Queue, TaskFailed
from persistent_queue.api import create_app
from persistent_queue.errors import InvalidArgument, InvalidPayload
from persistent_queue.worker import EXIT_OK, Worker, WorkerConfig


@pytest.fixture
def app_queue(tmp_path: Path) -> Iterator[Queue]:
    """The user's app module's Queue, with tasks whose names are not plain identifiers."""
    declared = Queue(tmp_path / "declarations.db", durability="normal")

    @declared.task(queue="work", name="reports/monthly")
    def monthly(month: int) -> int:
        return month

    @declared.task(queue="work", name="ünïcode ☃")
    def snowman(x: int) -> int:
        return x

    yield declared
    declared.close()


@pytest.fixture
def tasks_client(queue: Queue, app_queue: Queue) -> Iterator[TestClient]:
    with TestClient(create_app(queue, registry=app_queue.tasks, max_wait=10)) as client:
        yield client


@pytest.mark.parametrize("path", ["/tasks/reports/monthly", "/tasks/reports%2Fmonthly"])
def test_a_task_whose_name_has_a_slash_can_be_posted(tasks_client: TestClient, queue: Queue,
                                                     path: str) -> None:
    listed = [task["name"] for task in tasks_client.get("/tasks").json()]
    assert "reports/monthly" in listed
    response = tasks_client.post(path, json={"args": [7]})
    assert response.status_code == 201, response.text
    job = queue.get_job(response.json()["id"])
    assert job.payload == {"task": "reports/monthly", "args": [7], "kwargs": {}}


def test_a_task_whose_name_is_unicode_can_be_posted(tasks_client: TestClient) -> None:
    response = tasks_client.post("/tasks/ünïcode ☃", json={"args": [1]})
    assert response.status_code == 201, response.text
    assert response.json()["headers"] == {"task": "ünïcode ☃"}


def test_an_unknown_name_with_a_slash_is_a_422_unknown_task(tasks_client: TestClient) -> None:
    response = tasks_client.post("/tasks/reports/yearly", json={})
    assert response.status_code == 422 and response.json()["error"] == "unknown_task"


def test_keyword_arguments_named_like_options_reach_the_task(real_queue: Queue) -> None:
    @real_queue.task(queue="work", name="echo")
    def echo(a: int, /, *args: int, queue: str = "", delay: int = 0,
             **rest: object) -> list[object]:
        return [a, list(args), queue, delay, rest]

    handle = echo.delay(1, 2, queue="q", delay=3, priority=9, depends_on="x")
    worker = Worker(real_queue, WorkerConfig(queues=("work",), log_dir=None, wait=0.2,
                                             max_jobs=1, worker_id="w"),
                    lambda job: None, real_queue.tasks)
    assert worker.run() == EXIT_OK
    assert handle.result(timeout=5) == [1, [2], "q", 3, {"priority": 9, "depends_on": "x"}]
    assert handle.job.queue == "work" and handle.job.priority == 0


def test_a_waiting_child_of_a_failing_parent_gets_task_failed_promptly(
        real_queue: Queue) -> None:
    @real_queue.task(queue="work", name="fails", max_attempts=1)
    def fails() -> None:
        raise ValueError("boom")

    @real_queue.task(queue="work", name="child")
    def child() -> int:
        return 1

    parent = fails.delay()
    handle = child.options(depends_on=[parent]).delay()
    worker = Worker(real_queue, WorkerConfig(queues=("work",), log_dir=None, wait=0.2,
                                             max_jobs=1, worker_id="w"),
                    lambda job: None, real_queue.tasks)
    thread = threading.Thread(target=worker.run)
    thread.start()
    started = time.monotonic()
    with pytest.raises(TaskFailed, match=f"job {parent.id} it depends on was dead-lettered"):
        handle.result(timeout=30)
    assert time.monotonic() - started < 10
    thread.join(timeout=10)
    assert handle.status is JobState.DEAD


def test_depends_on_that_is_not_a_list_is_invalid_argument(real_queue: Queue) -> None:
    @real_queue.task(queue="work", name="step")
    def step() -> None:
        return None

    parent = step.delay()
    for wrong in (parent, parent.id, "1"):
        with pytest.raises(InvalidArgument, match="depends_on must be a list"):
            step.options(depends_on=wrong)  # type: ignore[arg-type]
    assert step.options(depends_on=[parent]).delay().job.depends_on == (parent.id,)


def test_headers_that_are_not_an_object_are_invalid_payload(real_queue: Queue) -> None:
    @real_queue.task(queue="work", name="step")
    def step() -> None:
        return None

    with pytest.raises(InvalidPayload, match="headers must be a JSON object"):
        step.options(headers=[("a", 1)])  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["a\x00b", "line\nbreak", "\ud800"])
def test_a_task_name_that_is_not_printable_text_is_refused_at_declaration(
        real_queue: Queue, name: str) -> None:
    with pytest.raises(InvalidArgument, match="printable"):
        real_queue.task(name=name)(lambda: None)
    assert name not in real_queue.tasks
