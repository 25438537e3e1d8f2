"""10. Hostile input at the library and at the API: rejected clearly, nothing stored, schema intact.

Pass: every hostile queue name and payload raises the specific exception (library) or gets a
4xx with a message (API: 422, or 413 for the oversized payload), never a 500; ``sqlite_master``
is byte-for-byte the same after; no job row was added by a rejected call; accepted edge cases
(-2^63, a NUL inside a string) round-trip exactly.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from persistent_queue import InvalidArgument, InvalidPayload, InvalidQueueName, Queue
from persistent_queue.api import create_app
from persistent_queue.errors import PayloadTooLarge
from tests.reliability.checker import integrity_check

NAMES = ['x";DROP TABLE jobs;--', "x'; DELETE FROM queues; --", "../x", "../../etc/passwd",
         "a\x00b", "a" * 300, "", " ", "\n", "a/b", "é", "%s", "{name}"]
MIB = 1024 * 1024


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


PAYLOADS: list[tuple[str, Any, type[Exception]]] = [
    ("lone surrogate", "\ud800", InvalidPayload),
    ("surrogate key", {"\udc80": 1}, InvalidPayload),
    ("NaN", float("nan"), InvalidPayload),
    ("Infinity", float("-inf"), InvalidPayload),
    ("2^63", 2**63, InvalidPayload),
    ("-2^63-1", -(2**63) - 1, InvalidPayload),
    ("1,000-deep", _nested(1000), InvalidPayload),
    ("1 MiB + 1 byte", "x" * (MIB + 1 - 2), PayloadTooLarge),  # + 2 quotes = 1 MiB + 1
    ("bytes", b"\xff\xfe", InvalidPayload),
]


def _schema(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                            "ORDER BY type, name").fetchall()
    finally:
        conn.close()


def _rows(q: Queue) -> int:
    return sum(s.pending + s.done + s.dead for s in q.stats().values())


def test_the_library_rejects_hostile_input(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    with Queue(db) as q:
        q.create_queue("ok")
        schema, rows = _schema(db), _rows(q)
        for name in NAMES:
            with pytest.raises(InvalidQueueName, match="invalid queue name"):
                q.enqueue(name, 1)
            with pytest.raises(InvalidQueueName):
                q.create_queue(name)
        for label, payload, error in PAYLOADS:
            with pytest.raises(error):
                q.enqueue("ok", payload)
            with pytest.raises(error):  # a bad item spoils the whole batch
                q.enqueue_many("ok", [1, 2, payload])
            assert _rows(q) == rows, label
        for field, value in [("priority", 2**63), ("priority", -(2**63)), ("delay", 2**63),
                             ("max_attempts", 2**63), ("delay", float("nan"))]:
            with pytest.raises(InvalidArgument):
                q.enqueue("ok", 1, **{field: value})
        with pytest.raises(InvalidPayload):
            q.enqueue("ok", 1, headers={"a\x00": 1})
        assert _rows(q) == rows
        assert _schema(db) == schema
        for edge in [-(2**63), 2**63 - 1, "a\x00b", {"k": "\u2028\uffff"}]:
            assert q.get_job(q.enqueue("ok", edge).id).payload == edge
    assert integrity_check(db) == "ok"


def test_the_api_rejects_hostile_input(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    with Queue(db) as q, TestClient(create_app(q), raise_server_exceptions=False) as client:
        q.create_queue("ok")
        schema, rows = _schema(db), _rows(q)
        answers = []
        for name in NAMES:
            answers.append(client.post("/enqueue", json={"queue": name, "payload": 1}))
            answers.append(client.get(f"/queues/{quote(name, safe='')}/stats"))
        raw_bodies = [
            b'{"queue": "ok", "payload": "\xff\xfe"}',          # invalid UTF-8
            b'{"queue": "ok", "payload": "\\ud800"}',           # lone surrogate escape
            b'{"queue": "ok", "payload": NaN}',
            b'{"queue": "ok", "payload": -Infinity}',
            b'{"queue": "ok", "payload": 9223372036854775808}',
            b'{"queue": "ok", "payload": -9223372036854775809}',
            b'{"queue": "ok", "payload": ' + b"[" * 1000 + b"]" * 1000 + b"}",
            b'{"queue": "ok", "payload": "' + b"x" * (MIB - 1) + b'"}',  # 1 MiB + 1 encoded
            b'{"queue": "ok", "payload": 1, "priority": 9223372036854775808}',
            b'{"queue": "ok\\u0000", "payload": 1}',
            b'{"queue": "ok", "payload": 1',                   # truncated
        ]
        for body in raw_bodies:
            answers.append(client.post("/enqueue", content=body,
                                       headers={"Content-Type": "application/json"}))
        for answer in answers:
            assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:200])
            assert answer.json(), answer.text[:200]  # a message, not an empty body
        assert answers[-4].status_code == 413
        assert _rows(q) == rows
        assert _schema(db) == schema
    assert integrity_check(db) == "ok"
