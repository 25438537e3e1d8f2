"""``/send``, ``/enqueue`` take a form as ``curl -d`` sends it; a request without a queue uses
the default queue; every 422 that remains says what a valid request looks like."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from persistent_queue import InvalidQueueName, Queue
from persistent_queue.api import create_app

FORM = {"content-type": "application/x-www-form-urlencoded"}  # what curl -d sends


def send_form(client: TestClient, body: bytes, path: str = "/send") -> dict[str, object]:
    response = client.post(path, content=body, headers=FORM)
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


@pytest.mark.parametrize("path", ["/send", "/enqueue"])
def test_a_form_message_is_the_payload_of_a_job_in_the_default_queue(
    client: TestClient, queue: Queue, path: str
) -> None:
    job = send_form(client, b"message=Hello World", path)  # curl -d "message=Hello World"
    assert job["queue"] == "default" and job["payload"] == "Hello World"
    assert queue.get_job(int(str(job["id"]))).payload == "Hello World"


def test_receive_without_a_queue_claims_from_the_default_queue(client: TestClient) -> None:
    assert client.get("/receive").status_code == 204
    sent = send_form(client, b"message=Hello+World%21")
    received = client.get("/receive")
    assert received.status_code == 200
    assert received.json()["id"] == sent["id"] and received.json()["payload"] == "Hello World!"
    assert received.json()["lease_token"]
    assert client.get("/dequeue").status_code == 204
    assert client.post("/dequeue", json={}).status_code == 204


def test_a_form_may_name_the_queue_and_options_as_text(client: TestClient) -> None:
    job = send_form(client, b"message=hi&queue=emails&priority=5&delay=0&max_attempts=3"
                            b"&dedup_key=k1")
    assert (job["queue"], job["priority"], job["max_attempts"]) == ("emails", 5, 3)
    again = client.post("/send", content=b"payload=other&queue=emails&dedup_key=k1",
                        headers=FORM)
    assert again.status_code == 200 and again.json()["deduplicated"] is True


def test_json_bodies_work_as_before_and_may_leave_out_the_queue(client: TestClient) -> None:
    named = client.post("/send", json={"queue": "emails", "payload": {"to": "a@b.c"}})
    assert named.status_code == 201 and named.json()["queue"] == "emails"
    unnamed = client.post("/enqueue", json={"payload": [1, 2]})
    assert unnamed.status_code == 201 and unnamed.json()["queue"] == "default"
    assert client.get("/receive", params={"queue": "emails"}).json()["payload"] == {
        "to": "a@b.c"}


def test_the_default_queue_is_configurable(queue: Queue) -> None:
    with TestClient(create_app(queue, default_queue="inbox")) as client:
        assert send_form(client, b"message=x")["queue"] == "inbox"
        assert client.get("/receive").json()["queue"] == "inbox"
    with pytest.raises(InvalidQueueName, match="default queue"):
        create_app(queue, default_queue="not a name")


@pytest.mark.parametrize("body, field, needle", [
    (b"msg=hi", "msg", "unknown form field 'msg'"),
    (b"message=a&message=b", "message", "given twice"),
    (b"message=a&payload=b", "payload", "the same field"),
    (b"queue=emails", "message", "needs a message field"),
    (b"", "message", "needs a message field"),
    (b"Hello World", "body", "name=value"),
    (b'{"queue": "emails", "payload": 1}', "body", "Content-Type: application/json"),
    (b"message=x&priority=high", "priority", "valid integer"),
    (b"message=x&delay=nan", "delay", "finite"),
    (b"message=x&queue=bad name", "queue", "pattern"),
    (b"message=%ff", "body", "UTF-8"),
    (b"message=x&headers=a", "headers", "need JSON"),
])
def test_an_invalid_form_is_422_naming_the_problem_and_a_valid_request(
    client: TestClient, queue: Queue, body: bytes, field: str, needle: str
) -> None:
    response = client.post("/send", content=body, headers=FORM)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["error"] == "validation_error"
    assert needle in answer["detail"]
    assert "message=Hello+World" in answer["detail"] and '"payload"' in answer["detail"]
    assert answer["problems"][0]["field"] == field
    assert queue.list_queues() == []


def test_an_invalid_json_body_also_says_what_a_valid_request_is(client: TestClient) -> None:
    response = client.post("/send")  # curl -X POST .../send, without a body
    assert response.status_code == 422
    assert response.json()["detail"].startswith("payload: Field required; a valid request is")


def test_other_media_types_are_415_with_the_valid_ones(client: TestClient) -> None:
    response = client.post("/send", content=b"message=x", headers={"content-type": "text/plain"})
    assert response.status_code == 415 and response.json()["error"] == "unsupported_media_type"
    assert "application/json" in response.json()["detail"]


def test_the_token_is_still_required_for_forms(queue: Queue) -> None:
    with TestClient(create_app(queue, token="t0k")) as client:
        assert client.post("/send", content=b"message=x", headers=FORM).status_code == 401
        assert client.get("/receive").status_code == 401
        allowed = client.post("/send", content=b"message=x",
                              headers={**FORM, "Authorization": "Bearer t0k"})
        assert allowed.status_code == 201


def test_the_openapi_schema_offers_both_bodies(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in ("/send", "/enqueue"):
        content = schema["paths"][path]["post"]["requestBody"]["content"]
        assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
        assert "queue" not in content["application/json"]["schema"]["required"]
