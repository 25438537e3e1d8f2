"""How the server runs ``POST /enqueue``: before the router, and with shared commits."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from persistent_queue import Queue
from persistent_queue.api import create_app
from persistent_queue.storage.sqlite.dialect import SQLiteDialect


@pytest.mark.sqlite_only  # group commit is SQLite's; PostgreSQL commits each request
def test_a_served_database_groups_concurrent_enqueues_in_normal_durability(
        db_path: Path | str) -> None:
    app = create_app(db_path, durability="normal")
    dialect = app.state.api.queue.backend.dialect
    assert isinstance(dialect, SQLiteDialect) and dialect.group_commit
    answers: list[int] = []
    with TestClient(app) as client:
        start = threading.Barrier(16)

        def send(n: int) -> None:
            start.wait()
            for i in range(20):
                answers.append(client.post("/enqueue", json={"queue": "q", "payload": [n, i]})
                               .status_code)

        threads = [threading.Thread(target=send, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == [201] * 320
        queue: Queue = app.state.api.queue
        assert queue.stats("q").ready == 320
        assert sorted(job.payload for job in queue.list_jobs("q", limit=1000)) == sorted(
            [n, i] for n in range(16) for i in range(20))


def test_a_queue_given_to_the_app_keeps_its_own_commit_policy(queue: Queue) -> None:
    dialect = getattr(queue.backend, "dialect", None)
    before = getattr(dialect, "group_commit", None)
    create_app(queue)
    assert getattr(dialect, "group_commit", None) == before


def test_the_fast_path_answers_as_the_route_did(queue: Queue) -> None:
    with TestClient(create_app(queue)) as client:
        fast = client.post("/enqueue", json={"queue": "q", "payload": {"a": "é"}, "priority": 2,
                                             "headers": {"k": 1}})
        form = client.post("/send", data={"message": "Hello World"})
        bad = client.post("/send", content=b"{", headers={"content-type": "application/json"})
        full = client.post("/enqueue", content=b'{"payload": 1, "x": 2}',
                           headers={"content-type": "application/json"})
    assert fast.status_code == 201 and fast.headers["content-type"] == "application/json"
    assert fast.json() == queue.get_job(fast.json()["id"]).to_dict()
    assert form.status_code == 201 and form.json()["queue"] == "default"
    assert form.json()["payload"] == "Hello World"
    assert bad.status_code == 422 and bad.json()["error"] == "validation_error"
    assert full.status_code == 422 and "x" in full.json()["detail"]
