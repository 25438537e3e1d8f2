"""Flow control over HTTP: limits on POST/PATCH /queues, group_key on enqueue, /metrics."""

from __future__ import annotations

from fastapi.testclient import TestClient

from persistent_queue import Queue


def test_limits_are_set_shown_changed_and_removed_through_the_queue_routes(
        client: TestClient) -> None:
    created = client.post("/queues", json={
        "name": "webhooks", "concurrency": 10, "rate_limit": "50/s", "group_concurrency": 1,
        "group_rate_limit": "5/s"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["concurrency"], body["rate_limit"], body["group_concurrency"],
            body["group_rate_limit"]) == (10, "50/s", 1, "5/s")
    changed = client.patch("/queues/webhooks", json={"rate_limit": None, "concurrency": 3})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["rate_limit"], changed.json()["concurrency"]) == (None, 3)
    assert changed.json()["group_rate_limit"] == "5/s"  # not named: unchanged
    assert client.get("/queues/webhooks").json()["concurrency"] == 3


def test_a_malformed_limit_is_a_422_naming_it(client: TestClient, queue: Queue) -> None:
    for body in ({"name": "q", "rate_limit": "fast"}, {"name": "q", "concurrency": 0},
                 {"name": "q", "group_rate_limit": "5/d"}, {"name": "q", "concurrency": "3"}):
        response = client.post("/queues", json=body)
        assert response.status_code == 422, (body, response.text)
        field = next(key for key in body if key != "name")
        assert field in response.text
    assert queue.list_queues() == []
    client.post("/queues", json={"name": "q"})
    response = client.patch("/queues/q", json={"rate_limit": "50 per second"})
    assert response.status_code == 422 and "rate_limit" in response.json()["detail"]


def test_enqueue_with_a_group_key_as_json_or_a_form(client: TestClient, queue: Queue) -> None:
    client.post("/queues", json={"name": "q", "group_concurrency": 1})
    made = client.post("/enqueue", json={"queue": "q", "payload": 1, "group_key": "c-42"})
    assert made.status_code == 201 and made.json()["group_key"] == "c-42"
    form = client.post("/enqueue", data={"message": "hi", "queue": "q", "group_key": "c-42"})
    assert form.status_code == 201 and form.json()["group_key"] == "c-42"
    assert client.post("/enqueue", json={"queue": "q", "payload": 1,
                                         "group_key": ""}).status_code == 422
    claimed = client.post("/dequeue", json={"queue": "q"})
    assert claimed.json()["group_key"] == "c-42"
    assert client.post("/dequeue", json={"queue": "q"}).status_code == 204  # its turn is taken


def test_metrics_count_throttled_claims_and_held_jobs(client: TestClient, queue: Queue) -> None:
    queue.create_queue("q", concurrency=1)
    queue.enqueue_many("q", [1, 2, 3])
    assert queue.dequeue("q") is not None
    assert queue.dequeue("q") is None
    text = client.get("/metrics").text
    assert 'pq_queue_throttled_claims_total{queue="q"} 1.0' in text
    assert 'pq_queue_held_jobs{queue="q"} 2.0' in text
    assert 'pq_queue_limit{limit="concurrency",queue="q"} 1.0' in text
