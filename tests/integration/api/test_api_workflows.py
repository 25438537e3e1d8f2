"""Workflows over HTTP: dependencies and dedup on enqueue, topics, schedules, their errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from api_helpers import claim, lease
from fastapi.testclient import TestClient

from persistent_queue import JobState, Queue

if TYPE_CHECKING:
    from tests.support import FakeClock


def test_depends_on_makes_a_waiting_job_released_by_the_ack(client: TestClient,
                                                            queue: Queue) -> None:
    parent = client.post("/enqueue", json={"queue": "etl", "payload": "extract"}).json()
    child = client.post("/send", json={"queue": "etl", "payload": "load",
                                       "depends_on": [parent["id"]]})
    assert child.status_code == 201
    assert child.json()["state"] == "waiting" and child.json()["depends_on"] == [parent["id"]]
    client.post("/ack", json=lease(claim(client, "etl")))
    assert queue.get_job(child.json()["id"]).state is JobState.READY


def test_a_missing_dependency_is_422_invalid_dependency(client: TestClient) -> None:
    response = client.post("/enqueue", json={"queue": "etl", "payload": 1, "depends_on": [999]})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_dependency"
    assert "999" in response.json()["detail"]


def test_a_dedup_hit_is_200_and_says_so(client: TestClient, queue: Queue) -> None:
    first = client.post("/enqueue", json={"queue": "mail", "payload": 1, "dedup_key": "u7"})
    assert first.status_code == 201 and first.json()["deduplicated"] is False
    again = client.post("/send", json={"queue": "mail", "payload": 2, "dedup_key": "u7"})
    assert again.status_code == 200
    assert again.json()["deduplicated"] is True and again.json()["id"] == first.json()["id"]
    assert client.get("/queues/mail/stats").json()["dedup_hits"] == 1
    assert queue.stats("mail").ready == 1


def test_dedup_window_keeps_a_finished_job(client: TestClient, clock: FakeClock) -> None:
    body = {"queue": "mail", "payload": 1, "dedup_key": "k", "dedup_window": 60}
    first = client.post("/enqueue", json=body).json()
    client.post("/ack", json=lease(claim(client, "mail")))
    clock.advance(30)
    assert client.post("/enqueue", json=body).json()["id"] == first["id"]
    clock.advance(31)
    assert client.post("/enqueue", json=body).status_code == 201
    alone = client.post("/enqueue", json={"queue": "mail", "payload": 1, "dedup_window": 5})
    assert alone.status_code == 422 and "dedup_window needs a dedup_key" in alone.json()["detail"]


def test_run_at_delays_the_job(client: TestClient, clock: FakeClock) -> None:
    at = clock() + 100
    job = client.post("/enqueue", json={"queue": "q", "payload": 1, "run_at": at}).json()
    assert job["available_at"] == at
    assert client.post("/dequeue", json={"queue": "q"}).status_code == 204


def test_a_full_queue_is_429(client: TestClient) -> None:
    client.post("/queues", json={"name": "small", "max_size": 1})
    client.post("/enqueue", json={"queue": "small", "payload": 1})
    response = client.post("/enqueue", json={"queue": "small", "payload": 2})
    assert response.status_code == 429 and response.json()["error"] == "queue_full"
    assert response.headers["retry-after"] == "1"
    assert client.get("/queues/small/stats").json()["rejected_full"] == 1


def test_topics_subscribe_publish_unsubscribe(client: TestClient, queue: Queue) -> None:
    nobody = client.post("/topics/orders/publish", json={"payload": {"id": 1}})
    assert nobody.status_code == 404 and nobody.json()["error"] == "no_subscribers"
    made = client.post("/topics/orders/subscriptions", json={"queue": "billing"})
    assert made.status_code == 201 and made.json()["queue"] == "billing"
    assert client.post("/topics/orders/subscriptions", json={"queue": "billing"}).status_code \
        == 200
    client.post("/topics/orders/subscriptions", json={"queue": "shipping"})
    assert client.get("/topics").json() == [{"topic": "orders",
                                             "queues": ["billing", "shipping"]}]
    published = client.post("/topics/orders/publish",
                            json={"payload": {"id": 1}, "headers": {"src": "web"}})
    assert published.status_code == 201
    body = published.json()
    assert [job["queue"] for job in body["jobs"]] == ["billing", "shipping"]
    assert queue.get_job(body["ids"][1]).headers["src"] == "web"
    assert client.delete("/topics/orders/subscriptions/billing").status_code == 204
    gone = client.delete("/topics/orders/subscriptions/billing")
    assert gone.status_code == 404 and gone.json()["error"] == "not_subscribed"
    assert [s["queue"] for s in client.get("/topics/orders/subscriptions").json()] == \
        ["shipping"]


def test_deleting_a_queue_deletes_its_schedules_and_subscriptions(client: TestClient,
                                                                   queue: Queue) -> None:
    client.post("/queues", json={"name": "reports"})
    client.post("/schedules", json={"name": "nightly", "queue": "reports", "every": 3600})
    client.post("/schedules", json={"name": "tick", "queue": "metrics", "every": 60})
    client.post("/topics/orders/subscriptions", json={"queue": "reports"})
    client.post("/topics/audit/subscriptions", json={"queue": "reports"})
    client.post("/topics/orders/subscriptions", json={"queue": "billing"})
    client.post("/enqueue", json={"queue": "reports", "payload": 1})
    refused = client.delete("/queues/reports")
    assert refused.status_code == 409
    assert client.get("/schedules/nightly").status_code == 200  # nothing deleted

    assert client.delete("/queues/reports?force=true").status_code == 204

    assert [s["name"] for s in client.get("/schedules").json()] == ["tick"]
    assert client.get("/topics").json() == [{"topic": "orders", "queues": ["billing"]}]
    nobody = client.post("/topics/audit/publish", json={"payload": 1})
    assert nobody.status_code == 404 and nobody.json()["error"] == "no_subscribers"
    assert client.get("/queues/reports").status_code == 404


def test_schedules_crud_and_errors(client: TestClient, queue: Queue, clock: FakeClock) -> None:
    made = client.post("/schedules", json={"name": "tick", "queue": "metrics",
                                           "payload": {"k": 1}, "every": 60})
    assert made.status_code == 201 and made.json()["next_run_at"] == clock() + 60
    cron = client.post("/schedules", json={"name": "nightly", "queue": "reports",
                                           "cron": "0 3 * * *", "timezone": "Europe/Paris"})
    assert cron.status_code == 201
    assert [s["name"] for s in client.get("/schedules").json()] == ["nightly", "tick"]
    assert client.get("/schedules/tick").json()["every"] == 60
    clock.advance(61)
    assert [job.queue for job in queue.run_due_schedules()] == ["metrics"]
    assert client.get("/schedules/tick").json()["runs"] == 1
    assert client.delete("/schedules/tick").status_code == 204
    missing = client.get("/schedules/tick")
    assert missing.status_code == 404 and missing.json()["error"] == "schedule_not_found"
    assert client.delete("/schedules/tick").status_code == 404
    both = client.post("/schedules", json={"name": "x", "queue": "q", "every": 60,
                                           "cron": "* * * * *"})
    assert both.status_code == 422 and "exactly one" in both.json()["detail"]
    bad = client.post("/schedules", json={"name": "x", "queue": "q", "cron": "nope"})
    assert bad.status_code == 422 and "cron" in bad.json()["detail"]
    zone = client.post("/schedules", json={"name": "x", "queue": "q", "cron": "* * * * *",
                                           "timezone": "Mars/Olympus"})
    assert zone.status_code == 422
