"""Tasks over HTTP: POST /tasks/{name} (with ``--app``'s registry), GET /tasks, a job's result
in GET /jobs/{id}, and GET /jobs/{id}/result long-polling for it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from persistent_queue import Queue, current_job
from persistent_queue.api import create_app
from persistent_queue.tasks import TaskRegistry


@pytest.fixture
def app_queue(tmp_path: Path) -> Iterator[Queue]:
    """The user's app module's Queue (another file: the API must store jobs in its own)."""
    declared = Queue(tmp_path / "app-declarations.db", durability="normal")

    @declared.task(queue="emails", max_attempts=4, name="app.send_email")
    def send_email(to: str, subject: str = "") -> dict[str, str]:
        return {"sent": to}

    @declared.task(queue="reports", name="app.total")
    def total() -> int:
        return sum(current_job().dependency_results().values())

    yield declared
    declared.close()


@pytest.fixture
def registry(app_queue: Queue) -> TaskRegistry:
    return app_queue.tasks


@pytest.fixture
def tasks_client(queue: Queue, registry: TaskRegistry) -> Iterator[TestClient]:
    """A client of an app serving ``queue`` with the app's tasks (``pq api --app``)."""
    with TestClient(create_app(queue, registry=registry, max_wait=10)) as test_client:
        yield test_client


def run_next(queue: Queue, registry: TaskRegistry, name: str) -> None:
    """What a worker does with the next job of ``name``: run its task, ack with the result."""
    job = queue.dequeue(name)
    assert job is not None
    queue.ack(job, result=registry.run(job, queue=queue))


# POST /tasks/{name}


def test_post_task_stores_a_task_job_in_the_servers_queue(
        tasks_client: TestClient, queue: Queue, app_queue: Queue) -> None:
    response = tasks_client.post("/tasks/app.send_email",
                                 json={"args": ["a@b.c"], "kwargs": {"subject": "hi"}})
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["queue"] == "emails" and job["max_attempts"] == 4
    assert job["payload"] == {"task": "app.send_email", "args": ["a@b.c"],
                              "kwargs": {"subject": "hi"}}
    assert job["headers"] == {"task": "app.send_email"}
    assert queue.get_job(job["id"]).state.value == "ready"
    assert app_queue.stats() == {}  # the declaring Queue's file holds nothing


def test_post_task_takes_the_enqueue_options(tasks_client: TestClient, queue: Queue) -> None:
    body = {"args": ["a@b.c"], "queue": "urgent", "priority": 7, "delay": 30,
            "headers": {"tenant": "acme"}, "dedup_key": "welcome-a@b.c", "max_attempts": 2}
    first = tasks_client.post("/tasks/app.send_email", json=body)
    assert first.status_code == 201, first.text
    job = first.json()
    assert (job["queue"], job["priority"], job["max_attempts"]) == ("urgent", 7, 2)
    assert job["state"] == "ready" and job["available_at"] > job["created_at"] + 29
    assert job["headers"] == {"tenant": "acme", "task": "app.send_email"}
    again = tasks_client.post("/tasks/app.send_email", json=body)
    assert again.status_code == 200 and again.json()["deduplicated"] is True
    assert again.json()["id"] == job["id"]


def test_an_unknown_task_name_is_422_unknown_task_listing_the_known_ones(
        tasks_client: TestClient) -> None:
    response = tasks_client.post("/tasks/app.nope", json={"args": []})
    assert response.status_code == 422
    assert response.json()["error"] == "unknown_task"
    assert "unknown task 'app.nope'" in response.json()["detail"]
    assert "app.send_email" in response.json()["detail"]


def test_without_a_registry_post_task_is_422_saying_to_start_with_app(
        client: TestClient) -> None:
    response = client.post("/tasks/app.send_email", json={"args": ["a@b.c"]})
    assert response.status_code == 422
    assert response.json()["error"] == "no_task_registry"
    assert "start the API with --app" in response.json()["detail"]
    assert client.get("/tasks").json() == []


def test_arguments_that_do_not_fit_the_function_are_422_before_anything_is_stored(
        tasks_client: TestClient, queue: Queue) -> None:
    response = tasks_client.post("/tasks/app.send_email", json={"kwargs": {"too": "a@b.c"}})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_arguments"
    assert "missing a required argument: 'to'" in response.json()["detail"]
    assert queue.stats() == {}


def test_the_task_header_cannot_be_overridden(tasks_client: TestClient) -> None:
    response = tasks_client.post("/tasks/app.send_email",
                                 json={"args": ["a@b.c"], "headers": {"task": "other"}})
    assert response.status_code == 422
    assert "the task's name" in response.json()["detail"]


def test_get_tasks_lists_the_servers_tasks(tasks_client: TestClient) -> None:
    assert tasks_client.get("/tasks").json() == [
        {"name": "app.send_email", "queue": "emails", "max_attempts": 4, "timeout": None},
        {"name": "app.total", "queue": "reports", "max_attempts": None, "timeout": None},
    ]


# Results


def test_get_job_includes_the_result_once_done(tasks_client: TestClient, queue: Queue,
                                               registry: TaskRegistry) -> None:
    job_id = tasks_client.post("/tasks/app.send_email", json={"args": ["a@b.c"]}).json()["id"]
    assert tasks_client.get(f"/jobs/{job_id}").json()["result"] is None
    run_next(queue, registry, "emails")
    job = tasks_client.get(f"/jobs/{job_id}").json()
    assert job["state"] == "done" and job["result"] == {"sent": "a@b.c"}


def test_result_of_a_done_job_is_200_with_state_done(tasks_client: TestClient, queue: Queue,
                                                     registry: TaskRegistry) -> None:
    job_id = tasks_client.post("/tasks/app.send_email", json={"args": ["a@b.c"]}).json()["id"]
    run_next(queue, registry, "emails")
    response = tasks_client.get(f"/jobs/{job_id}/result")
    assert response.status_code == 200
    assert response.json() == {"id": job_id, "state": "done", "result": {"sent": "a@b.c"},
                               "error": None}


def test_result_of_an_unfinished_job_is_202_with_its_state(tasks_client: TestClient) -> None:
    job_id = tasks_client.post("/tasks/app.send_email", json={"args": ["a@b.c"]}).json()["id"]
    response = tasks_client.get(f"/jobs/{job_id}/result", params={"wait": 0.2})
    assert response.status_code == 202
    assert response.json() == {"id": job_id, "state": "ready", "result": None, "error": None}


def test_result_of_a_dead_lettered_job_is_200_with_state_dead_and_the_error(
        tasks_client: TestClient, queue: Queue) -> None:
    job_id = tasks_client.post("/tasks/app.send_email",
                               json={"args": ["a@b.c"], "max_attempts": 1}).json()["id"]
    job = queue.dequeue("emails")
    assert job is not None
    queue.nack(job, error="SMTP said no")
    response = tasks_client.get(f"/jobs/{job_id}/result", params={"wait": 5})
    assert response.status_code == 200
    assert response.json() == {"id": job_id, "state": "dead", "result": None,
                               "error": "SMTP said no"}


def test_result_of_a_cancelled_job_is_200_with_state_cancelled_and_the_reason(
        tasks_client: TestClient, queue: Queue) -> None:
    job_id = tasks_client.post("/tasks/app.send_email", json={"args": ["a@b.c"]}).json()["id"]
    queue.cancel(job_id, reason="wrong address")
    response = tasks_client.get(f"/jobs/{job_id}/result", params={"wait": 5})
    assert response.status_code == 200
    assert response.json() == {"id": job_id, "state": "cancelled", "result": None,
                               "error": "wrong address"}


def test_post_task_takes_a_timeout_over_the_tasks(tasks_client: TestClient) -> None:
    posted = tasks_client.post("/tasks/app.send_email", json={"args": ["a@b.c"], "timeout": 9})
    assert posted.status_code == 201, posted.text
    assert posted.json()["timeout"] == 9
    refused = tasks_client.post("/tasks/app.send_email", json={"args": ["a"], "timeout": 0})
    assert refused.status_code == 422


def test_result_of_an_unknown_job_is_404(tasks_client: TestClient) -> None:
    response = tasks_client.get("/jobs/424242/result", params={"wait": 1})
    assert response.status_code == 404
    assert response.json()["error"] == "job_not_found"


def test_result_wait_beyond_the_servers_max_wait_is_422(tasks_client: TestClient) -> None:
    response = tasks_client.get("/jobs/1/result", params={"wait": 11})
    assert response.status_code == 422
    assert "at most 10 seconds" in response.json()["detail"]


def test_result_long_poll_answers_when_a_worker_acks_during_the_wait(
        tasks_client: TestClient, queue: Queue, registry: TaskRegistry) -> None:
    job_id = tasks_client.post("/tasks/app.send_email", json={"args": ["x@y.z"]}).json()["id"]
    # Whether the ack lands before or during the request, the answer is the same: 200 done.
    worker = threading.Timer(0.3, run_next, args=(queue, registry, "emails"))
    worker.start()
    try:
        response = tasks_client.get(f"/jobs/{job_id}/result", params={"wait": 10})
    finally:
        worker.join()
    assert response.status_code == 200
    assert response.json()["result"] == {"sent": "x@y.z"}


def test_a_fan_in_posted_over_http_reads_its_parents_results(
        tasks_client: TestClient, queue: Queue, registry: TaskRegistry) -> None:
    parents = []
    for to in ("a@b.c", "d@e.f"):
        parents.append(tasks_client.post("/tasks/app.send_email", json={"args": [to]}).json())
    fan_in = tasks_client.post("/tasks/app.total",
                               json={"depends_on": [p["id"] for p in parents]})
    assert fan_in.status_code == 201 and fan_in.json()["state"] == "waiting"
    for _ in parents:
        job = queue.dequeue("emails")
        assert job is not None
        queue.ack(job, result=job.id * 10)
    run_next(queue, registry, "reports")
    response = tasks_client.get(f"/jobs/{fan_in.json()['id']}/result")
    assert response.json()["result"] == sum(p["id"] * 10 for p in parents)
