"""Control of running jobs over HTTP: cancel, delete, retry now, edit a dead letter, the
timeline, and the job fields that say how an attempt runs (progress, worker, run time,
timeout). Every error is a 4xx naming the problem, never a 500."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from api_helpers import claim, lease
from fastapi.testclient import TestClient

from persistent_queue import JobNotFound, JobState, Queue, config

if TYPE_CHECKING:
    from tests.support import FakeClock


#: A payload nested deeper than the library stores (``config.MAX_JSON_DEPTH``).
DEEP: Any = 1
for _ in range(config.MAX_JSON_DEPTH + 1):
    DEEP = [DEEP]


def dead_letter(queue: Queue, payload: Any = None, **options: Any) -> int:
    """A job of queue ``hooks`` failed on its only attempt; its id."""
    job = queue.enqueue("hooks", {"url": "http://a.example"} if payload is None else payload,
                        max_attempts=1, **options)
    claimed = queue.dequeue("hooks")
    assert claimed is not None
    queue.nack(claimed, error="HTTP 500")
    return job.id


def error_of(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == code
    return str(body["detail"])


# -- the job's fields ------------------------------------------------------------------------


def test_a_job_says_who_runs_it_since_when_how_far_and_under_what_limit(
    client: TestClient, queue: Queue, clock: FakeClock
) -> None:
    job = queue.enqueue("reports", {"day": "mon"}, timeout=300)
    fresh = client.get(f"/jobs/{job.id}").json()
    assert fresh["timeout"] == 300 and fresh["progress"] is None
    assert (fresh["started_at"], fresh["claimed_by"], fresh["run_time"]) == (None, None, None)
    assert (fresh["cancel_requested"], fresh["cancel_reason"]) == (False, None)

    claimed = queue.dequeue("reports", worker="worker-7")
    assert claimed is not None
    queue.set_progress(claimed, 0.25, "part 1 of 4")
    running = client.get(f"/jobs/{job.id}").json()
    assert running["progress"] == {"fraction": 0.25, "message": "part 1 of 4"}
    assert running["claimed_by"] == "worker-7" and running["started_at"] == clock.now
    assert running["run_time"] is None  # still running

    clock.advance(12.5)
    queue.ack(claimed)
    done = client.get(f"/jobs/{job.id}").json()
    assert done["state"] == "done" and done["run_time"] == 12.5
    listed = client.get("/jobs", params={"queue": "reports"}).json()
    assert listed[0]["run_time"] == 12.5 and listed[0]["claimed_by"] == "worker-7"


def test_the_history_is_the_whole_timeline_with_workers_and_run_times(
    client: TestClient, queue: Queue, clock: FakeClock
) -> None:
    job = queue.enqueue("emails", {"to": "a@b.c"})
    first = queue.dequeue("emails", worker="w1")
    assert first is not None
    clock.advance(2)
    queue.nack(first, error="SMTP 451", delay=0)
    second = queue.dequeue("emails", worker="w2")
    assert second is not None
    clock.advance(3)
    queue.ack(second)
    events = client.get(f"/jobs/{job.id}/history").json()
    assert [(e["event"], e["attempt"], e["worker"], e["run_time"]) for e in events] == [
        ("enqueued", 0, None, None), ("claimed", 1, "w1", None), ("failed", 1, "w1", 2.0),
        ("claimed", 2, "w2", None), ("acked", 2, "w2", 3.0)]
    assert events[2]["detail"] == "SMTP 451"
    assert error_of(client.get("/jobs/999/history"), 404, "job_not_found")


# -- cancel ------------------------------------------------------------------------------------


def test_cancelling_a_queued_job_ends_it_at_once(client: TestClient, queue: Queue) -> None:
    plain_job = queue.enqueue("emails", 1)
    delayed = queue.enqueue("emails", 2, delay=3600)
    response = client.post(f"/jobs/{plain_job.id}/cancel")  # no body: no reason
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "cancelled" and response.json()["cancel_reason"] is None
    with_reason = client.post(f"/jobs/{delayed.id}/cancel", json={"reason": "wrong day"})
    assert with_reason.json()["state"] == "cancelled"
    assert with_reason.json()["cancel_reason"] == "wrong day"
    assert queue.dequeue("emails") is None
    assert [e["event"] for e in client.get(f"/jobs/{delayed.id}/history").json()] == [
        "enqueued", "cancelled"]


def test_cancelling_a_running_job_asks_its_consumer_which_sees_it_and_ends_it(
    client: TestClient, queue: Queue
) -> None:
    queue.enqueue("emails", {"to": "a@b.c"})
    job = claim(client)
    requested = client.post(f"/jobs/{job['id']}/cancel", json={"reason": "stop"})
    assert requested.status_code == 200, requested.text
    body = requested.json()
    assert body["state"] == "leased" and body["cancel_requested"] is True
    assert body["cancel_reason"] == "stop" and body["lease_token"] is None
    again = client.post(f"/jobs/{job['id']}/cancel", json={"reason": "other"})
    assert again.status_code == 200 and again.json()["cancel_reason"] == "stop"
    # An HTTP consumer learns it from its heartbeat, and its nack ends the job cancelled.
    beat = client.post("/extend", json=lease(job))
    assert beat.json()["cancel_requested"] is True
    nacked = client.post("/nack", json={**lease(job), "error": "stopped"})
    assert nacked.json()["outcome"] == "cancelled"
    assert nacked.json()["job"]["state"] == "cancelled"
    assert queue.get_job(job["id"]).state is JobState.CANCELLED


def test_an_ack_that_comes_before_the_worker_stops_still_acks(
    client: TestClient, queue: Queue
) -> None:
    queue.enqueue("emails", 1)
    job = claim(client)
    client.post(f"/jobs/{job['id']}/cancel")
    assert client.post("/ack", json=lease(job)).status_code == 200
    assert client.get(f"/jobs/{job['id']}").json()["state"] == "done"


def test_a_finished_job_cannot_be_cancelled(client: TestClient, queue: Queue) -> None:
    queue.enqueue("emails", 1)
    done = claim(client)
    client.post("/ack", json=lease(done))
    cancelled = queue.enqueue("emails", 2)
    queue.cancel(cancelled.id)
    dead = dead_letter(queue)
    for job_id, state in [(done["id"], "done"), (cancelled.id, "cancelled"), (dead, "dead")]:
        detail = error_of(client.post(f"/jobs/{job_id}/cancel"), 409, "invalid_job_state")
        assert f"job {job_id} is" in detail, detail
        assert state.rstrip("d") in detail or "dead-lettered" in detail, detail
    assert error_of(client.post("/jobs/999/cancel"), 404, "job_not_found") == (
        "no job with id 999")


@pytest.mark.parametrize("body", [
    {"reason": 5}, {"reason": "x" * (config.MAX_REASON_CHARS + 1)}, {"why": "x"}, [],
])
def test_a_bad_cancel_body_is_422_and_changes_nothing(
    client: TestClient, queue: Queue, body: Any
) -> None:
    job = queue.enqueue("emails", 1)
    error_of(client.post(f"/jobs/{job.id}/cancel", json=body), 422, "validation_error")
    error_of(client.post("/jobs/0/cancel"), 422, "validation_error")
    assert queue.get_job(job.id).state is JobState.READY


# -- delete --------------------------------------------------------------------------------


def test_delete_removes_a_queued_done_or_cancelled_job_with_its_history(
    client: TestClient, queue: Queue
) -> None:
    ready = queue.enqueue("emails", 1)
    cancelled = queue.enqueue("emails", 2, delay=60)
    queue.cancel(cancelled.id)
    done = queue.enqueue("other", 3)
    claimed = queue.dequeue("other")
    assert claimed is not None
    queue.ack(claimed)
    for job_id in (ready.id, cancelled.id, done.id):
        response = client.delete(f"/jobs/{job_id}")
        assert response.status_code == 204 and response.content == b""
        with pytest.raises(JobNotFound):
            queue.get_job(job_id)
        error_of(client.get(f"/jobs/{job_id}/history"), 404, "job_not_found")
    error_of(client.delete(f"/jobs/{ready.id}"), 404, "job_not_found")


def test_delete_refuses_a_running_job_and_a_dead_letter(client: TestClient,
                                                        queue: Queue) -> None:
    queue.enqueue("emails", 1)
    running = claim(client)
    detail = error_of(client.delete(f"/jobs/{running['id']}"), 409, "invalid_job_state")
    assert "cancel it first" in detail
    dead = dead_letter(queue)
    assert "purge" in error_of(client.delete(f"/jobs/{dead}"), 409, "invalid_job_state")
    assert queue.get_job(running["id"]).state is JobState.LEASED
    assert [d.id for d in queue.dead_letters()] == [dead]


def test_deleting_a_parent_dead_letters_the_jobs_waiting_for_it(
    client: TestClient, queue: Queue
) -> None:
    parent = queue.enqueue("etl", "extract")
    child = queue.enqueue("etl", "load", depends_on=[parent.id])
    assert client.delete(f"/jobs/{parent.id}").status_code == 204
    [dead] = client.get("/dead-letters").json()
    assert dead["id"] == child.id and dead["reason"] == "dependency deleted"


# -- retry now -----------------------------------------------------------------------------


def test_retry_now_makes_a_delayed_or_backing_off_job_claimable(
    client: TestClient, queue: Queue
) -> None:
    delayed = queue.enqueue("emails", 1, delay=3600)
    response = client.post(f"/jobs/{delayed.id}/retry")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "ready"
    job = claim(client)
    assert job["id"] == delayed.id
    client.post("/nack", json={**lease(job), "delay": 3600})  # backing off for an hour
    assert client.post(f"/jobs/{delayed.id}/retry").status_code == 200
    assert claim(client)["attempts"] == 2


def test_retry_now_is_409_unless_the_job_waits_for_its_time(
    client: TestClient, queue: Queue
) -> None:
    ready = queue.enqueue("emails", 1)
    detail = error_of(client.post(f"/jobs/{ready.id}/retry"), 409, "invalid_job_state")
    assert detail == f"job {ready.id} is already claimable: it is neither delayed nor backing off"
    running = claim(client)
    assert "leased" in error_of(client.post(f"/jobs/{running['id']}/retry"), 409,
                                "invalid_job_state")
    error_of(client.post("/jobs/999/retry"), 404, "job_not_found")


# -- dead letters --------------------------------------------------------------------------


def test_a_dead_letter_is_edited_then_redriven_with_its_new_payload(
    client: TestClient, queue: Queue
) -> None:
    dead = dead_letter(queue, headers={"tenant": "acme"})
    edited = client.patch(f"/dead-letters/{dead}",
                          json={"payload": {"url": "http://b.example"}, "priority": 7})
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["payload"] == {"url": "http://b.example"} and body["priority"] == 7
    assert body["headers"] == {"tenant": "acme"}  # not given: unchanged
    cleared = client.patch(f"/dead-letters/{dead}", json={"headers": None})
    assert cleared.json()["headers"] == {}
    assert cleared.json()["payload"] == {"url": "http://b.example"}
    null_payload = client.patch(f"/dead-letters/{dead}", json={"payload": None})
    assert null_payload.json()["payload"] is None
    client.patch(f"/dead-letters/{dead}", json={"payload": "final"})
    assert client.post(f"/dead-letters/{dead}/redrive").json() == {"ids": [dead]}
    job = claim(client, "hooks")
    assert (job["payload"], job["priority"], job["headers"]) == ("final", 7, {})


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"payload": "x" * (1024 * 1024)}, 413, "payload_too_large"),
    ({"payload": DEEP}, 422, "invalid_input"),
    ({"headers": {"k": [1]}}, 422, "validation_error"),
    ({"headers": {"": "empty key"}}, 422, "invalid_input"),
    ({"priority": config.PRIORITY_MAX + 1}, 422, "validation_error"),
    ({"priority": None}, 422, "validation_error"),
    ({"reason": "x"}, 422, "validation_error"),
])
def test_an_invalid_edit_is_refused_exactly_like_an_enqueue(
    client: TestClient, queue: Queue, body: dict[str, Any], status: int, code: str
) -> None:
    dead = dead_letter(queue)
    before = queue.dead_letters()[0]
    edit = client.patch(f"/dead-letters/{dead}", json=body)
    error_of(edit, status, code)
    same = client.post("/enqueue", json={"queue": "hooks", "payload": 1, **body})
    if "reason" not in body:
        assert (same.status_code, same.json()["error"]) == (status, code), same.text
    assert queue.dead_letters()[0] == before


def test_a_nan_payload_in_an_edit_is_422(client: TestClient, queue: Queue) -> None:
    dead = dead_letter(queue)
    response = client.patch(f"/dead-letters/{dead}", content=b'{"payload": NaN}',
                            headers={"Content-Type": "application/json"})
    assert "NaN is not allowed" in error_of(response, 422, "validation_error")


def test_only_a_dead_letter_can_be_edited(client: TestClient, queue: Queue) -> None:
    job = queue.enqueue("emails", 1)
    detail = error_of(client.patch(f"/dead-letters/{job.id}", json={"payload": 2}), 409,
                      "invalid_job_state")
    assert detail == f"job {job.id} is not dead-lettered; only a dead letter can be edited"
    error_of(client.patch("/dead-letters/999", json={"payload": 2}), 404, "job_not_found")
    assert queue.get_job(job.id).payload == 1


# -- timeouts on enqueue and on queues ---------------------------------------------------------


def test_enqueue_takes_a_timeout_as_json_or_form(client: TestClient) -> None:
    as_json = client.post("/enqueue", json={"queue": "reports", "payload": 1, "timeout": 30})
    assert as_json.status_code == 201 and as_json.json()["timeout"] == 30
    as_form = client.post("/send", data={"message": "hi", "queue": "reports", "timeout": "2.5"})
    assert as_form.status_code == 201 and as_form.json()["timeout"] == 2.5
    for bad in (0, -1, config.MAX_TIMEOUT + 1, "30"):
        refused = client.post("/enqueue", json={"queue": "reports", "payload": 1,
                                                "timeout": bad})
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["problems"][0]["field"] == "timeout"


def test_a_queue_timeout_is_set_changed_and_removed(client: TestClient, queue: Queue) -> None:
    created = client.post("/queues", json={"name": "reports", "timeout": 60})
    assert created.status_code == 201 and created.json()["timeout"] == 60
    assert client.post("/enqueue", json={"queue": "reports", "payload": 1}).json()[
        "timeout"] == 60
    assert client.patch("/queues/reports", json={"timeout": 5}).json()["timeout"] == 5
    assert client.patch("/queues/reports", json={"timeout": None}).json()["timeout"] is None
    assert queue.get_queue("reports").timeout is None
    error_of(client.patch("/queues/reports", json={"timeout": 0}), 422, "validation_error")
