"""No input produces a 500: schemathesis against the app's own OpenAPI, plus raw hostile bodies.

Schemathesis generates valid and invalid requests (types, bounds, patterns, missing and extra
fields) for every operation; the hypothesis test below adds what a schema cannot express:
NaN/Infinity tokens, overflowing numbers, invalid UTF-8, lone surrogates, deep nesting and junk.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from persistent_queue import Queue
from persistent_queue.api import create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    queue = Queue(Path(tmp_path_factory.mktemp("fuzz")) / "queue.db", durability="normal",
                  busy_timeout=30)
    queue.enqueue("emails", {"seed": True})
    # Long polls are capped low so generated ``wait`` values cannot stall the run.
    yield create_app(queue, max_wait=0.05, token=None)
    queue.close()


def test_no_generated_request_gets_a_server_error(fuzzed_app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    for operation in operations:
        cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                          operation.as_strategy(GenerationMode.NEGATIVE))

        @given(case=cases)
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)
        def no_server_error(case: schemathesis.Case) -> None:
            response = case.call()
            case.validate_response(response, checks=[not_a_server_error])

        no_server_error()


_TOKENS = st.sampled_from([
    b"NaN", b"-Infinity", b"Infinity", b"1e999", b"-1e400", b"9" * 5000, b'"\\ud800"',
    b'"\\udfff x"', b"\xff\xfe", b"\xc3", b"[" * 3000, b"{" * 3000, b"null", b"true", b"{}",
    b"[]", b'""', b'"emails"', b"0", b"-1", b"1.5", b"9223372036854775808", b"\x00", b",",
    b":", b'"id"', b'"lease_token"', b'"queue"', b'"payload"', b'"wait"', b"}", b"]",
])
_BODIES = st.one_of(
    st.lists(_TOKENS, max_size=12).map(b"".join),
    st.lists(_TOKENS, max_size=6).map(
        lambda parts: b'{"queue": "emails", "payload": ' + b"".join(parts) + b"}"),
    st.lists(_TOKENS, max_size=6).map(
        lambda parts: b'{"id": 1, "lease_token": ' + b"".join(parts) + b"}"),
    st.binary(max_size=200),
)
_WRITES = ["/enqueue", "/send", "/dequeue", "/ack", "/nack", "/extend", "/requeue",
           "/queues", "/dead-letters/redrive"]


@given(path=st.sampled_from(_WRITES), body=_BODIES,
       content_type=st.sampled_from(["application/json", "text/plain", "application/x+json"]))
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True, database=None)
def test_hostile_bodies_get_a_4xx_with_a_message(
    fuzzed_app: FastAPI, path: str, body: bytes, content_type: str
) -> None:
    client = TestClient(fuzzed_app, raise_server_exceptions=False)
    response = client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code < 500, (path, body[:100], response.text)
    if response.status_code >= 400:
        assert response.json()["detail"]


@given(queue=st.text(max_size=140), state=st.text(max_size=12), header=st.text(max_size=40),
       limit=st.integers(-5, 2**70) | st.text(max_size=8))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True, database=None)
def test_hostile_query_parameters_get_a_4xx(
    fuzzed_app: FastAPI, queue: str, state: str, header: str, limit: object
) -> None:
    client = TestClient(fuzzed_app, raise_server_exceptions=False)
    params = {"queue": queue, "state": state, "header": header, "limit": str(limit)}
    for path in ("/jobs", "/dead-letters", "/dequeue", f"/queues/{quote(queue, safe='')}/stats"):
        response = client.get(path, params=params)
        assert response.status_code < 500, (path, params, response.text)


@given(authorization=st.binary(max_size=80).filter(lambda b: b"\r" not in b and b"\n" not in b),
       method=st.sampled_from(["GET", "POST", "DELETE", "PATCH"]),
       path=st.sampled_from(["/queues", "/enqueue", "/dequeue", "/metrics", "/healthz"]))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True, database=None)
def test_hostile_authorization_headers_never_get_in(
    fuzzed_app: FastAPI, authorization: bytes, method: str, path: str
) -> None:
    secured = create_app(fuzzed_app.state.api.queue, token="the-token", read_token="read")
    client = TestClient(secured, raise_server_exceptions=False)
    response = client.request(method, path, headers={"authorization": authorization})
    if path == "/healthz":
        assert response.status_code < 500 or response.status_code == 503
    else:
        assert response.status_code in (401, 403), (authorization, response.status_code)
