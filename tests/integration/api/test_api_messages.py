"""The hot path over HTTP: enqueue, claim, ack, nack, extend, requeue, and their errors."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from api_helpers import claim, lease
from fastapi.testclient import TestClient

from persistent_queue import JobState, Queue

if TYPE_CHECKING:
    from tests.support import FakeClock


def test_enqueue_returns_201_with_the_stored_job(client: TestClient, queue: Queue) -> None:
    response = client.post("/enqueue", json={
        "queue": "emails", "payload": {"to": "a@b.c"}, "priority": 5,
        "headers": {"tenant": "acme"}, "max_attempts": 3})
    assert response.status_code == 201
    body = response.json()
    assert body["payload"] == {"to": "a@b.c"} and body["state"] == "ready"
    assert body["priority"] == 5 and body["headers"] == {"tenant": "acme"}
    assert body["max_attempts"] == 3 and body["lease_token"] is None
    assert queue.get_job(body["id"]).payload == {"to": "a@b.c"}


def test_round_trip_enqueue_dequeue_ack(client: TestClient, queue: Queue) -> None:
    job_id = client.post("/enqueue", json={"queue": "emails", "payload": 1}).json()["id"]
    job = claim(client)
    assert job["id"] == job_id and job["state"] == "leased" and job["lease_token"]
    assert client.post("/ack", json=lease(job)).json() == {"ok": True}
    assert queue.get_job(job_id).state is JobState.DONE


def test_dequeue_of_an_empty_queue_is_204(client: TestClient) -> None:
    assert client.post("/dequeue", json={"queue": "emails"}).status_code == 204
    assert client.get("/dequeue", params={"queue": "emails"}).status_code == 204
    assert client.get("/receive", params={"queue": "emails"}).status_code == 204


def test_get_dequeue_and_receive_claim_like_post(client: TestClient) -> None:
    client.post("/enqueue", json={"queue": "emails", "payload": "a"})
    client.post("/send", json={"queue": "emails", "payload": "b"})
    first = client.get("/dequeue", params={"queue": "emails", "visibility_timeout": 5})
    second = client.get("/receive", params={"queue": "emails"})
    assert first.status_code == second.status_code == 200
    assert {first.json()["payload"], second.json()["payload"]} == {"a", "b"}
    assert first.json()["lease_expires_at"] - first.json()["updated_at"] == 5


def test_priority_orders_claims(client: TestClient) -> None:
    client.post("/enqueue", json={"queue": "emails", "payload": "low"})
    client.post("/enqueue", json={"queue": "emails", "payload": "high", "priority": 9})
    assert claim(client)["payload"] == "high"


def test_delayed_job_is_not_claimable_until_due(client: TestClient, clock: FakeClock) -> None:
    client.post("/enqueue", json={"queue": "emails", "payload": 1, "delay": 60})
    assert client.post("/dequeue", json={"queue": "emails"}).status_code == 204
    clock.advance(61)
    assert claim(client)["payload"] == 1


def test_long_poll_returns_a_job_enqueued_while_waiting(real_queue: Queue) -> None:
    from persistent_queue.api import create_app

    with TestClient(create_app(real_queue)) as client:
        timer = threading.Timer(0.3, lambda: real_queue.enqueue("emails", "late"))
        timer.start()
        started = time.monotonic()
        response = client.post("/dequeue", json={"queue": "emails", "wait": 15})
        timer.join()
        assert response.status_code == 200 and response.json()["payload"] == "late"
        assert time.monotonic() - started < 25


def test_long_poll_gives_up_with_204_after_wait(real_queue: Queue) -> None:
    from persistent_queue.api import create_app

    with TestClient(create_app(real_queue)) as client:
        started = time.monotonic()
        response = client.get("/dequeue", params={"queue": "emails", "wait": 0.3})
        assert response.status_code == 204
        assert time.monotonic() - started >= 0.3


def test_long_poll_beyond_the_servers_limit_is_422(queue: Queue) -> None:
    from persistent_queue.api import create_app

    with TestClient(create_app(queue, max_wait=5)) as client:
        response = client.post("/dequeue", json={"queue": "emails", "wait": 6})
        assert response.status_code == 422 and "at most 5" in response.json()["detail"]


def test_second_ack_is_409_lease_lost(client: TestClient) -> None:
    client.post("/enqueue", json={"queue": "emails", "payload": 1})
    job = claim(client)
    client.post("/ack", json=lease(job))
    response = client.post("/ack", json=lease(job))
    assert response.status_code == 409 and response.json()["error"] == "lease_lost"


def test_ack_with_a_wrong_token_is_409_and_changes_nothing(
    client: TestClient, queue: Queue
) -> None:
    client.post("/enqueue", json={"queue": "emails", "payload": 1})
    job = claim(client)
    response = client.post("/ack", json={"id": job["id"], "lease_token": "not-the-token"})
    assert response.status_code == 409
    assert queue.get_job(job["id"]).state is JobState.LEASED


def test_ack_after_the_lease_expired_and_was_reclaimed_is_409(
    client: TestClient, clock: FakeClock
) -> None:
    client.post("/enqueue", json={"queue": "emails", "payload": 1})
    stale = claim(client, visibility_timeout=10)
    clock.advance(11)
    fresh = claim(client)
    assert fresh["id"] == stale["id"] and fresh["attempts"] == 2
    assert client.post("/ack", json=lease(stale)).status_code == 409
    assert client.post("/ack", json=lease(fresh)).status_code == 200


def test_ack_of_an_unknown_job_is_404_or_409(client: TestClient) -> None:
    response = client.post("/ack", json={"id": 999, "lease_token": "x"})
    assert response.status_code in (404, 409)
    assert response.json()["error"] in ("job_not_found", "lease_lost")


def test_nack_retries_then_dead_letters(client: TestClient, clock: FakeClock) -> None:
    client.post("/enqueue", json={"queue": "emails", "payload": 1, "max_attempts": 2})
    first = client.post("/nack", json={**lease(claim(client)), "error": "boom", "delay": 5})
    assert first.status_code == 200
    assert first.json()["outcome"] == "retry" and first.json()["job"]["last_error"] == "boom"
    assert client.post("/dequeue", json={"queue": "emails"}).status_code == 204
    clock.advance(6)
    second = client.post("/nack", json={**lease(claim(client)), "error": "again"})
    assert second.json()["outcome"] == "dead"
    assert second.json()["dead_letter"]["last_error"] == "again"


def test_extend_moves_the_lease_end(client: TestClient, clock: FakeClock) -> None:
    client.post("/enqueue", json={"queue": "emails", "payload": 1})
    job = claim(client, visibility_timeout=10)
    clock.advance(8)
    response = client.post("/extend", json={**lease(job), "seconds": 100})
    assert response.status_code == 200
    assert response.json()["lease_expires_at"] == clock.now + 100
    clock.advance(50)
    assert client.post("/dequeue", json={"queue": "emails"}).status_code == 204
    assert client.post("/ack", json=lease(job)).status_code == 200


def test_extend_without_seconds_uses_the_queue_timeout(
    client: TestClient, clock: FakeClock
) -> None:
    client.post("/queues", json={"name": "emails", "visibility_timeout": 40})
    client.post("/enqueue", json={"queue": "emails", "payload": 1})
    job = claim(client)
    response = client.post("/extend", json=lease(job))
    assert response.json()["lease_expires_at"] == clock.now + 40


def test_requeue_gives_the_job_back_without_counting_the_attempt(client: TestClient) -> None:
    client.post("/enqueue", json={"queue": "emails", "payload": 1})
    job = claim(client)
    response = client.post("/requeue", json=lease(job))
    assert response.status_code == 200 and response.json()["state"] == "ready"
    again = claim(client)
    assert again["id"] == job["id"] and again["attempts"] == 1
    assert client.post("/requeue", json=lease(job)).status_code == 409


def test_stale_extend_nack_and_requeue_are_409(client: TestClient) -> None:
    client.post("/enqueue", json={"queue": "emails", "payload": 1})
    job = claim(client)
    client.post("/ack", json=lease(job))
    for path in ("/extend", "/nack", "/requeue"):
        response = client.post(path, json=lease(job))
        assert response.status_code == 409, path
