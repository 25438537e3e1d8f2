"""Tokens, the body limit, strict validation and how library errors become statuses."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from persistent_queue import (
    DatabaseBusy,
    DatabaseMissing,
    Queue,
    QueueError,
    QueueFull,
    SchemaTooNew,
    StorageError,
    StorageFull,
)
from persistent_queue.api import create_app

FULL, READ = "s3cret-full-token", "s3cret-read-token"


@pytest.fixture
def secured(queue: Queue) -> Iterator[TestClient]:
    with TestClient(create_app(queue, token=FULL, read_token=READ)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_every_route_but_healthz_needs_the_token(secured: TestClient) -> None:
    for method, path in [("GET", "/queues"), ("POST", "/enqueue"), ("GET", "/metrics"),
                         ("GET", "/jobs/1"), ("GET", "/openapi.json"), ("GET", "/docs"),
                         ("DELETE", "/queues/emails"), ("GET", "/nowhere")]:
        response = secured.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"] == "unauthorized"
    assert secured.get("/healthz").status_code == 200


def test_a_wrong_or_malformed_token_is_401(secured: TestClient) -> None:
    header: str | bytes
    for header in ["Bearer wrong", f"Basic {FULL}", FULL, "Bearer ", f"bearer  {FULL}x",
                   "Bearer caf\u00e9".encode("latin-1")]:
        response = secured.get("/queues", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_the_full_token_may_do_everything(secured: TestClient) -> None:
    response = secured.post("/enqueue", json={"queue": "emails", "payload": 1},
                            headers=bearer(FULL))
    assert response.status_code == 201
    assert secured.get("/dequeue", params={"queue": "emails"},
                       headers=bearer(FULL)).status_code == 200
    assert secured.get("/metrics", headers={"authorization": f"bearer {FULL}"}).status_code == 200


def test_the_read_token_may_only_read(secured: TestClient, queue: Queue) -> None:
    queue.enqueue("emails", 1)
    for path in ("/queues", "/jobs", "/stats", "/dead-letters", "/workers", "/metrics",
                 "/queues/emails/stats"):
        assert secured.get(path, headers=bearer(READ)).status_code == 200, path
    for method, path in [("POST", "/enqueue"), ("POST", "/dequeue"), ("POST", "/ack"),
                         ("DELETE", "/queues/emails"), ("POST", "/queues/emails/pause"),
                         ("GET", "/dequeue?queue=emails"), ("GET", "/receive?queue=emails")]:
        response = secured.request(method, path, headers=bearer(READ))
        assert response.status_code == 403, (method, path)
        assert response.json()["error"] == "forbidden"
    assert queue.stats("emails").ready == 1  # the claims were refused, nothing leased


def test_a_read_token_without_a_full_token_is_refused(queue: Queue) -> None:
    with pytest.raises(ValueError):
        create_app(queue, read_token=READ)


def test_body_over_the_limit_is_413_by_content_length(queue: Queue) -> None:
    with TestClient(create_app(queue, max_body_bytes=2048)) as client:
        response = client.post("/enqueue", json={"queue": "emails", "payload": "x" * 4096})
        assert response.status_code == 413 and response.json()["error"] == "body_too_large"
        ok = client.post("/enqueue", json={"queue": "emails", "payload": "x" * 1000})
        assert ok.status_code == 201


def test_body_over_the_limit_is_413_when_streamed_without_length(queue: Queue) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"queue": "emails", "payload": "'
        for _ in range(10):
            yield b"x" * 1024
        yield b'"}'

    with TestClient(create_app(queue, max_body_bytes=4096)) as client:
        response = client.post("/enqueue", content=chunks(),
                               headers={"content-type": "application/json"})
        assert response.status_code == 413
    assert queue.list_queues() == []


def test_default_limit_admits_a_1_mib_payload_and_refuses_more(queue: Queue) -> None:
    with TestClient(create_app(queue)) as client:
        fits = "x" * (1024 * 1024 - 2)  # 1 MiB once encoded with its quotes
        assert client.post("/enqueue", json={"queue": "q", "payload": fits}).status_code == 201
        over = client.post("/enqueue", json={"queue": "q", "payload": fits + "yy"})
        assert over.status_code == 413 and over.json()["error"] == "payload_too_large"
        huge = client.post("/enqueue", json={"queue": "q", "payload": "x" * (2 * 1024 * 1024)})
        assert huge.status_code == 413 and huge.json()["error"] == "body_too_large"


@pytest.mark.parametrize("raw, needle", [
    (b'{"queue": "emails", "payload": NaN}', "NaN"),
    (b'{"queue": "emails", "payload": [Infinity]}', "Infinity"),
    (b'{"queue": "emails", "payload": {"a": -Infinity}}', "Infinity"),
    (b'{"queue": "emails", "payload": 1e999}', "out of range"),
    (b'{"queue": "emails", "payload": 1, "delay": 1e400}', "out of range"),
    (b'{"queue": "emails", "payload": "\\ud800"}', "surrogate"),
    (b'{"queue": "emails", "payload": "\xff\xfe"}', "UTF-8"),
    (b'{"queue": "emails", "payload": ' + b"9" * 5000 + b"}", "digits"),
    (b'{"queue": "emails", "payload": ' + b"[" * 100_000 + b"}", "nested"),
    (b'{"queue": "emails", "payload": 1', "JSON"),
])
def test_non_strict_json_is_422_with_a_clear_message(
    client: TestClient, queue: Queue, raw: bytes, needle: str
) -> None:
    response = client.post("/enqueue", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"
    assert needle in response.json()["detail"]
    assert queue.list_queues() == []


@pytest.mark.parametrize("body, field", [
    ({"queue": "bad name", "payload": 1}, "queue"),
    ({"queue": "", "payload": 1}, "queue"),
    ({"queue": "x" * 129, "payload": 1}, "queue"),
    ({"queue": "emails"}, "payload"),
    ({"queue": "emails", "payload": 1, "priority": 2**31}, "priority"),
    ({"queue": "emails", "payload": 1, "priority": "5"}, "priority"),
    ({"queue": "emails", "payload": 1, "priority": True}, "priority"),
    ({"queue": "emails", "payload": 1, "delay": -1}, "delay"),
    ({"queue": "emails", "payload": 1, "max_attempts": 0}, "max_attempts"),
    ({"queue": "emails", "payload": 1, "headers": {"k": {"nested": 1}}}, "headers"),
    ({"queue": "emails", "payload": 1, "surprise": 1}, "surprise"),
])
def test_invalid_fields_are_422_naming_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    response = client.post("/enqueue", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


@pytest.mark.parametrize("body", [
    {"id": 0, "lease_token": "t"}, {"id": 2**63, "lease_token": "t"},
    {"id": 1, "lease_token": ""}, {"id": "1", "lease_token": "t"}, {"id": 1.5, "lease_token": "t"},
    {"lease_token": "t"}, [], "ack", None,
])
def test_invalid_lease_bodies_are_422(client: TestClient, body: object) -> None:
    for path in ("/ack", "/nack", "/extend", "/requeue"):
        response = client.post(path, content=json.dumps(body),
                               headers={"content-type": "application/json"})
        assert response.status_code == 422, (path, body, response.text)


def test_library_input_errors_are_422(client: TestClient) -> None:
    response = client.post("/enqueue", json={"queue": "emails", "payload": 1, "delay": 5,
                                             "run_at": 1})
    assert response.status_code == 422 and response.json()["error"] == "invalid_input"
    bad_header = client.post("/enqueue", json={"queue": "e", "payload": 1,
                                               "headers": {"bad key!": 1}})
    assert bad_header.status_code == 422 and "header" in bad_header.json()["detail"]


def test_unknown_routes_and_methods_are_clean_errors(client: TestClient) -> None:
    assert client.get("/nowhere").json()["error"] == "not_found"
    assert client.put("/enqueue").status_code == 405


@pytest.mark.sqlite_only
def test_a_locked_database_is_503_with_retry_after(db_path: Path) -> None:
    queue = Queue(db_path, durability="normal", busy_timeout=0.05)
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with TestClient(create_app(queue)) as client:
            response = client.post("/enqueue", json={"queue": "emails", "payload": 1})
            assert response.status_code == 503
            assert response.json()["error"] == "database_busy"
            assert response.headers["retry-after"] == "1"
        holder.execute("ROLLBACK")
        with TestClient(create_app(queue)) as client:
            response = client.post("/enqueue", json={"queue": "emails", "payload": 1})
            assert response.status_code == 201
    finally:
        holder.close()
        queue.close()


@pytest.mark.parametrize("error, status, code", [
    (QueueFull("queue 'emails' holds 10 jobs, its max_size"), 429, "queue_full"),
    (StorageFull("the disk is full"), 507, "storage_full"),
    (DatabaseBusy("locked"), 503, "database_busy"),
    (DatabaseMissing("the database file was deleted"), 503, "database_missing"),
    (SchemaTooNew("schema 9"), 503, "storage_error"),
    (StorageError("disk I/O error"), 503, "storage_error"),
])
def test_storage_and_capacity_errors_map_to_their_status(
    queue: Queue, error: QueueError, status: int, code: str
) -> None:
    app = create_app(queue)

    @app.get("/raise")
    def raise_it() -> None:
        raise error

    with TestClient(app) as client:
        response = client.get("/raise")
        assert response.status_code == status
        assert response.json() == {"error": code, "detail": str(error)}
