"""Queues, jobs, dead letters, workers, throughput, health and metrics over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from api_helpers import claim, lease
from fastapi.testclient import TestClient

from persistent_queue import Queue, StorageError

if TYPE_CHECKING:
    from tests.support import FakeClock


def test_create_list_get_update_and_delete_a_queue(client: TestClient) -> None:
    created = client.post("/queues", json={"name": "emails", "max_attempts": 3,
                                           "visibility_timeout": 45, "max_size": 10})
    assert created.status_code == 201
    assert created.json()["max_attempts"] == 3 and created.json()["max_size"] == 10
    assert [q["name"] for q in client.get("/queues").json()] == ["emails"]
    assert client.get("/queues/emails").json()["visibility_timeout"] == 45
    updated = client.patch("/queues/emails", json={"max_attempts": 7, "max_size": None})
    assert updated.status_code == 200
    assert updated.json()["max_attempts"] == 7 and updated.json()["max_size"] is None
    assert updated.json()["visibility_timeout"] == 45
    assert client.delete("/queues/emails").status_code == 204
    assert client.get("/queues/emails").status_code == 404


def test_creating_an_existing_queue_is_409_unless_exist_ok(client: TestClient) -> None:
    client.post("/queues", json={"name": "emails"})
    again = client.post("/queues", json={"name": "emails"})
    assert again.status_code == 409 and again.json()["error"] == "queue_already_exists"
    assert client.post("/queues", json={"name": "emails", "exist_ok": True}).status_code == 201


def test_unknown_queue_is_404_on_every_queue_route(client: TestClient) -> None:
    for method, path in [("GET", "/queues/nope"), ("PATCH", "/queues/nope"),
                         ("DELETE", "/queues/nope"), ("POST", "/queues/nope/pause"),
                         ("POST", "/queues/nope/resume"), ("POST", "/queues/nope/purge"),
                         ("GET", "/queues/nope/stats")]:
        body = {} if method == "PATCH" else None
        response = client.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"] == "queue_not_found"


def test_deleting_a_queue_with_unfinished_jobs_needs_force(
    client: TestClient, queue: Queue
) -> None:
    queue.enqueue("emails", 1)
    refused = client.delete("/queues/emails")
    assert refused.status_code == 409 and refused.json()["error"] == "queue_not_empty"
    assert client.delete("/queues/emails", params={"force": "true"}).status_code == 204
    assert queue.list_queues() == []


def test_pause_stops_claims_and_resume_restarts_them(client: TestClient, queue: Queue) -> None:
    queue.enqueue("emails", 1)
    assert client.post("/queues/emails/pause").json()["paused"] is True
    assert client.post("/dequeue", json={"queue": "emails"}).status_code == 204
    assert client.post("/queues/emails/resume").json()["paused"] is False
    assert claim(client)["payload"] == 1


def test_purge_deletes_unfinished_jobs(client: TestClient, queue: Queue) -> None:
    for n in range(3):
        queue.enqueue("emails", n)
    assert client.post("/queues/emails/purge").json() == {"count": 3}
    assert client.get("/queues/emails/stats").json()["pending"] == 0


def test_stats_count_jobs_by_state(client: TestClient, queue: Queue) -> None:
    queue.enqueue("emails", 1)
    queue.enqueue("emails", 2)
    queue.enqueue("sms", 3)
    claim(client)
    stats = client.get("/queues/emails/stats").json()
    assert stats["ready"] == 1 and stats["leased"] == 1 and stats["pending"] == 2
    everything = client.get("/stats").json()
    assert set(everything) == {"emails", "sms"} and everything["sms"]["ready"] == 1


def test_get_job_and_404_for_an_unknown_id(client: TestClient, queue: Queue) -> None:
    job = queue.enqueue("emails", {"a": 1})
    assert client.get(f"/jobs/{job.id}").json()["payload"] == {"a": 1}
    missing = client.get("/jobs/424242")
    assert missing.status_code == 404 and missing.json()["error"] == "job_not_found"
    assert client.get("/jobs/424242/history").status_code == 404


def test_list_jobs_filters_by_queue_state_and_header_with_paging(
    client: TestClient, queue: Queue
) -> None:
    for n in range(5):
        queue.enqueue("emails", n, headers={"tenant": "acme" if n % 2 else "other"})
    queue.enqueue("sms", 99)
    claim(client)
    assert len(client.get("/jobs").json()) == 6
    assert len(client.get("/jobs", params={"queue": "emails"}).json()) == 5
    leased = client.get("/jobs", params={"state": "leased"}).json()
    assert [j["payload"] for j in leased] == [0]
    acme = client.get("/jobs", params={"queue": "emails", "header": "tenant:acme"}).json()
    assert sorted(j["payload"] for j in acme) == [1, 3]
    page = client.get("/jobs", params={"queue": "emails", "limit": 2, "offset": 2,
                                       "newest_first": "false"}).json()
    assert [j["payload"] for j in page] == [2, 3]


def test_list_jobs_rejects_bad_filters_with_422(client: TestClient) -> None:
    assert client.get("/jobs", params={"state": "exploded"}).status_code == 422
    assert client.get("/jobs", params={"header": "no-colon"}).status_code == 422
    assert client.get("/jobs", params={"limit": 0}).status_code == 422
    assert client.get("/jobs", params={"queue": "bad name"}).status_code == 422


def test_history_records_failures(client: TestClient, queue: Queue) -> None:
    job = queue.enqueue("emails", 1)
    client.post("/nack", json={**lease(claim(client)), "error": "smtp down"})
    events = client.get(f"/jobs/{job.id}/history").json()
    assert events and events[-1]["detail"] == "smtp down"


def test_dead_letters_list_redrive_and_purge(
    client: TestClient, queue: Queue, clock: FakeClock
) -> None:
    for n in range(3):
        queue.enqueue("emails", n, max_attempts=1)
        client.post("/nack", json={**lease(claim(client)), "error": f"fail {n}"})
    dead = client.get("/dead-letters", params={"queue": "emails"}).json()
    assert sorted(d["payload"] for d in dead) == [0, 1, 2]
    one = dead[0]["id"]
    assert client.post(f"/dead-letters/{one}/redrive").json() == {"ids": [one]}
    assert client.get(f"/jobs/{one}").json()["state"] == "ready"
    again = client.post(f"/dead-letters/{one}/redrive")
    assert again.status_code == 409 and again.json()["error"] == "invalid_job_state"
    assert client.post("/dead-letters/999/redrive").status_code == 404
    clock.advance(10)
    assert client.delete("/dead-letters", params={"older_than": 3600}).json() == {"count": 0}
    assert client.delete("/dead-letters", params={"queue": "emails"}).json() == {"count": 2}
    assert client.get("/dead-letters").json() == []


def test_redrive_a_whole_queue(client: TestClient, queue: Queue) -> None:
    for n in range(2):
        queue.enqueue("emails", n, max_attempts=1)
        client.post("/nack", json=lease(claim(client)))
    moved = client.post("/dead-letters/redrive", json={"queue": "emails"}).json()["ids"]
    assert len(moved) == 2
    assert client.get("/queues/emails/stats").json()["ready"] == 2


def test_workers_lists_registered_processes(client: TestClient, queue: Queue) -> None:
    queue.register_worker("consumer-1", kind="consumer", queues=["emails"])
    workers = client.get("/workers").json()
    assert [(w["id"], w["state"], w["queues"]) for w in workers] == [
        ("consumer-1", "running", ["emails"])]


def test_throughput_counts_enqueued_and_acked(client: TestClient, queue: Queue) -> None:
    queue.enqueue("emails", 1)
    client.post("/ack", json=lease(claim(client)))
    points = client.get("/throughput", params={"window": 600, "bucket": 60}).json()
    assert sum(p["enqueued"] for p in points) == 1 and sum(p["acked"] for p in points) == 1
    too_fine = client.get("/throughput", params={"window": 3600, "bucket": 0.01})
    assert too_fine.status_code == 422


@pytest.mark.sqlite_only  # file, WAL and disk checks; tests/postgres has the server's
def test_healthz_reports_every_check(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) >= {"reachable", "writable", "integrity", "disk", "wal"}
    assert body["checks"]["disk"]["free_bytes"] > 0
    assert body["checks"]["integrity"] == {"ok": True, "problems": [],
                                           "checked_at": body["checks"]["integrity"]["checked_at"]}
    # The same reading as pq doctor and the admin console: one source, database_health.
    from persistent_queue.health import database_health

    report = database_health(client.app.state.api.queue)  # type: ignore[attr-defined]
    assert body["checks"]["wal"]["bytes"] == report.wal_bytes > 0
    assert body["checks"]["journal"] == {"ok": True, "journal_mode": "wal"}


@pytest.mark.sqlite_only
def test_healthz_fails_when_the_disk_is_below_the_minimum(queue: Queue) -> None:
    from persistent_queue.api import create_app

    with TestClient(create_app(queue, min_free_bytes=2**62)) as client:
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["checks"]["disk"]["ok"] is False


def test_metrics_expose_depth_counters_and_claim_latency(
    client: TestClient, queue: Queue
) -> None:
    client.post("/enqueue", json={"queue": "emails", "payload": 1})
    client.post("/enqueue", json={"queue": "emails", "payload": 2, "max_attempts": 1})
    client.post("/ack", json=lease(claim(client)))
    client.post("/nack", json=lease(claim(client)))
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "text/plain")
    text = response.text
    assert 'pq_queue_jobs{queue="emails",state="done"} 1.0' in text
    assert 'pq_queue_jobs{queue="emails",state="dead"} 1.0' in text
    assert 'pq_api_enqueued_total{queue="emails"} 2.0' in text
    assert "pq_api_acked_total 1.0" in text
    assert 'pq_api_nacked_total{queue="emails"} 1.0' in text
    assert 'pq_api_dead_lettered_total{queue="emails"} 1.0' in text
    assert 'pq_claim_latency_seconds_count{queue="emails"} 2.0' in text


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/enqueue", "/dequeue", "/ack", "/queues", "/jobs", "/dead-letters",
            "/healthz", "/metrics"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 200


def test_an_app_given_a_path_opens_and_closes_its_own_queue(tmp_path: Path) -> None:
    from persistent_queue.api import create_app

    app = create_app(tmp_path / "own.db")
    with TestClient(app) as client:
        assert client.post("/enqueue", json={"queue": "q", "payload": 1}).status_code == 201
    with pytest.raises(StorageError):  # closed at shutdown
        app.state.api.queue.stats()
    with Queue(tmp_path / "own.db") as reopened:
        assert reopened.stats("q").ready == 1


def test_an_operator_can_dead_letter_a_waiting_job_but_not_a_done_one(
    client: TestClient, queue: Queue
) -> None:
    waiting = queue.enqueue("emails", 1)
    moved = client.post(f"/jobs/{waiting.id}/dead-letter", json={"reason": "poison"})
    assert moved.status_code == 200 and moved.json()["reason"] == "poison"
    assert client.get(f"/jobs/{waiting.id}").json()["state"] == "dead"
    done = queue.enqueue("emails", 2)
    client.post("/ack", json=lease(claim(client)))
    refused = client.post(f"/jobs/{done.id}/dead-letter", json={})
    assert refused.status_code == 409 and refused.json()["error"] == "invalid_job_state"
    assert client.post("/jobs/9999/dead-letter", json={}).status_code == 404


def test_cleanup_deletes_old_done_jobs(
    client: TestClient, queue: Queue, clock: FakeClock
) -> None:
    old = queue.enqueue("emails", 1)
    client.post("/ack", json=lease(claim(client)))
    clock.advance(3600)
    queue.enqueue("emails", 2)
    client.post("/ack", json=lease(claim(client)))
    assert client.post("/cleanup", json={"older_than": 60}).json() == {"count": 1}
    assert client.get(f"/jobs/{old.id}").status_code == 404
    assert client.post("/cleanup", json={"older_than": -1}).status_code == 422
