"""``POST /queues/{name}/jobs/batch``: many jobs in one transaction, all of them or none."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from persistent_queue import JobState, Queue
from persistent_queue.api import create_app
from persistent_queue.errors import InvalidArgument, InvalidPayload
from tests.tracing_support import configured_sdk, named, traceparent_of

URL = "/queues/emails/jobs/batch"


def _count(queue: Queue) -> int:
    return sum(1 for _ in queue.list_jobs("emails", limit=1000))


def test_a_batch_stores_every_job_in_order_with_its_own_options(
        client: TestClient, queue: Queue) -> None:
    response = client.post(URL, json=[
        {"payload": {"to": "a@b.c"}},
        {"payload": "urgent", "priority": 9, "headers": {"tenant": "acme"}, "max_attempts": 2},
        {"payload": [1, 2], "delay": 60, "timeout": 5, "group_key": "g1"},
    ])
    assert response.status_code == 201
    body = response.json()
    assert body["queue"] == "emails" and len(body["ids"]) == 3
    assert body["ids"] == sorted(body["ids"])
    first, second, third = (queue.get_job(job_id) for job_id in body["ids"])
    assert first.payload == {"to": "a@b.c"} and first.state is JobState.READY
    assert second.priority == 9 and second.headers == {"tenant": "acme"}
    assert second.max_attempts == 2
    assert third.payload == [1, 2] and third.available_at - third.created_at == 60
    assert third.timeout == 5 and third.group_key == "g1"
    claimed = queue.dequeue("emails")
    assert claimed is not None and claimed.id == body["ids"][1]  # priority first


def test_a_large_batch_is_stored_whole(client: TestClient, queue: Queue) -> None:
    response = client.post(URL, json=[{"payload": n} for n in range(1000)])
    assert response.status_code == 201
    ids = response.json()["ids"]
    assert len(set(ids)) == 1000
    assert [queue.get_job(job_id).payload for job_id in ids[::100]] == list(range(0, 1000, 100))


@pytest.mark.parametrize(("jobs", "field"), [
    ([], "jobs"),
    ({"payload": 1}, "jobs"),
    ([{"payload": 1}, {"priority": 1}], "jobs.1.payload"),
    ([{"payload": 1}, {"payload": 2, "priority": "5"}], "jobs.1.priority"),
    ([{"payload": 1}, {"payload": 2, "priority": 2**40}], "jobs.1.priority"),
    ([{"payload": 1}, {"payload": 2, "queue": "other"}], "jobs.1.queue"),
    ([{"payload": 1}, {"payload": 2, "depends_on": [1]}], "jobs.1.depends_on"),
    ([{"payload": 1}, {"payload": 2, "delay": -1}], "jobs.1.delay"),
    ([{"payload": 1}, {"payload": 2, "headers": {"k": [1]}}], "jobs.1.headers.k.str"),
    ([{"payload": 1}, {"payload": 2, "group_key": ""}], "jobs.1.group_key"),
    ([{"payload": 1}] * 10_001, "jobs"),
    ([{"payload": 1}, 7], "jobs.1"),
])
def test_an_invalid_job_anywhere_is_422_naming_it_and_stores_nothing(
        client: TestClient, queue: Queue, jobs: Any, field: str) -> None:
    response = client.post(URL, json=jobs)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    assert field in [problem["field"] for problem in body["problems"]], body
    assert _count(queue) == 0


@pytest.mark.parametrize(("job", "status", "words"), [
    ({"payload": 2, "delay": 5, "run_at": 1e9}, 422, "job 1: give either delay or run_at"),
    ({"payload": "x" * 2_000}, 413, "job 1:"),
])
def test_what_the_library_refuses_is_4xx_naming_the_job_and_stores_nothing(
        queue: Queue, db_path: Path | str, job: dict[str, Any], status: int, words: str) -> None:
    small = Queue(db_path, durability="normal", max_payload_bytes=1_000)
    try:
        with TestClient(create_app(small)) as client:
            response = client.post(URL, json=[{"payload": 1}, job])
    finally:
        small.close()
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert _count(queue) == 0


@pytest.mark.parametrize(("content", "content_type", "status"), [
    (b"payload=1", "application/x-www-form-urlencoded", 415),
    (b"[{\"payload\": 1}", "application/json", 422),
    (b"[{\"payload\": NaN}]", "application/json", 422),
    (b"[{\"payload\": \"\\ud800\"}]", "application/json", 422),
    (b"\xff\xfe", "application/json", 422),
])
def test_a_body_that_is_no_json_array_is_4xx(client: TestClient, queue: Queue, content: bytes,
                                             content_type: str, status: int) -> None:
    response = client.post(URL, content=content, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert _count(queue) == 0


def test_a_bad_queue_name_is_422_and_a_body_over_the_limit_413(queue: Queue) -> None:
    with TestClient(create_app(queue, max_body_bytes=10_000)) as client:
        assert client.post("/queues/bad name/jobs/batch", json=[{"payload": 1}]).status_code \
            == 422
        body = json.dumps([{"payload": "x" * 100}] * 200)
        response = client.post(URL, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 413
    assert _count(queue) == 0


def test_a_batch_that_does_not_fit_a_bounded_queue_is_429_and_stores_nothing(
        client: TestClient, queue: Queue) -> None:
    queue.create_queue("emails", max_size=3)
    queue.enqueue("emails", "already")
    response = client.post(URL, json=[{"payload": n} for n in range(3)])
    assert response.status_code == 429
    assert _count(queue) == 1
    assert client.post(URL, json=[{"payload": n} for n in range(2)]).status_code == 201


def test_the_library_names_the_bad_job_and_stores_nothing(queue: Queue) -> None:
    with pytest.raises(InvalidArgument, match="job 1: unknown field"):
        queue.enqueue_batch("emails", [{"payload": 1}, {"payload": 2, "queue": "x"}])
    with pytest.raises(InvalidArgument, match="job 0: a job is a mapping with a payload"):
        queue.enqueue_batch("emails", [{"priority": 1}])
    assert _count(queue) == 0
    assert queue.enqueue_batch("emails", []) == []


def test_a_uniform_batch_and_a_mixed_one_store_the_same_jobs(queue: Queue) -> None:
    options = {"priority": 4, "delay": 30.0, "max_attempts": 2, "timeout": 9.0,
               "group_key": "g"}
    uniform = queue.enqueue_batch("emails", [{"payload": n, **options} for n in range(3)])
    mixed = queue.enqueue_batch("emails", [{"payload": n, **options} for n in range(2)]
                                + [{"payload": 2, **options, "headers": {"k": "v"}}])
    for one, other in zip(uniform, mixed, strict=True):
        for job in (one, queue.get_job(one.id)):
            assert (job.payload, job.priority, job.max_attempts, job.timeout, job.group_key) \
                == (other.payload, 4, 2, 9.0, "g")
            assert job.available_at - job.created_at == 30
    assert queue.get_job(mixed[2].id).headers == {"k": "v"}


@pytest.mark.parametrize("second", [
    {"payload": 2, "priority": True},  # equal to 1, but no integer
    {"payload": "x" * 2_000, "priority": 1},  # the batch is uniform: stored in one statement
    {"payload": float("nan"), "priority": 1},
])
def test_a_batch_like_its_first_job_still_names_a_bad_one(
        db_path: Path | str, second: dict[str, Any]) -> None:
    small = Queue(db_path, durability="normal", max_payload_bytes=1_000)
    try:
        with pytest.raises((InvalidArgument, InvalidPayload), match="^job 1: "):
            small.enqueue_batch("emails", [{"payload": 1, "priority": 1}, second])
        assert _count(small) == 0
    finally:
        small.close()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """An SDK tracer provider for this test (tracing on); its finished spans."""
    yield from configured_sdk()


@pytest.mark.sqlite_only  # tracing is the library's, above the storage
def test_a_batch_is_one_producer_span_whose_context_every_job_carries(
        queue: Queue, spans: InMemorySpanExporter) -> None:
    for jobs in ([{"payload": n} for n in range(3)],  # uniform: one statement
                 [{"payload": 0}, {"payload": 1, "priority": 2}, {"payload": 2}]):
        stored = queue.enqueue_batch("work", jobs)
        send = named(spans, "send work")[-1]
        assert (send.attributes or {})["messaging.batch.message_count"] == 3
        assert {queue.get_job(job.id).headers["traceparent"] for job in stored} == {
            traceparent_of(send)}
    assert len(named(spans, "send work")) == 2
