"""Alerts and running jobs over HTTP: thresholds on POST/PATCH /queues (422 on bad values),
GET /alerts, GET /busy and the alert gauges of /metrics."""

from __future__ import annotations

from fastapi.testclient import TestClient

from persistent_queue import Queue
from tests.support import FakeClock


def test_alert_thresholds_are_set_cleared_and_checked(client: TestClient) -> None:
    made = client.post("/queues", json={"name": "emails", "alert_depth": 2,
                                        "alert_oldest_age": 60, "alert_failure_rate": 0.5,
                                        "alert_dead_letters": 1})
    assert made.status_code == 201, made.text
    assert {key: made.json()[key] for key in ("alert_depth", "alert_oldest_age",
                                              "alert_failure_rate", "alert_dead_letters")} == {
        "alert_depth": 2, "alert_oldest_age": 60.0, "alert_failure_rate": 0.5,
        "alert_dead_letters": 1}
    cleared = client.patch("/queues/emails", json={"alert_depth": None, "alert_oldest_age": 5})
    assert cleared.status_code == 200
    assert (cleared.json()["alert_depth"], cleared.json()["alert_oldest_age"]) == (None, 5.0)
    for bad in ({"alert_depth": 0}, {"alert_depth": "3"}, {"alert_failure_rate": 0},
                {"alert_failure_rate": 1.5}, {"alert_oldest_age": -1},
                {"alert_dead_letters": 2**63}, {"alert_failure": 0.1}):
        response = client.patch("/queues/emails", json=bad)
        assert response.status_code == 422, (bad, response.text)
    assert client.get("/queues/emails").json()["alert_oldest_age"] == 5.0


def test_alerts_busy_and_metrics(client: TestClient, queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("emails", alert_depth=2, alert_dead_letters=1)
    queue.create_queue("quiet", alert_depth=10)
    for n in range(3):
        queue.enqueue("emails", n, headers={"task": "send"})
    running = queue.dequeue("emails", worker="w1")
    assert running is not None
    clock.advance(7)
    queue.set_progress(running, 0.5, "half")

    alerts = client.get("/alerts").json()
    assert [(a["queue"], a["kind"], a["value"], a["firing"]) for a in alerts] == [
        ("emails", "depth", 2.0, True), ("emails", "dead_letters", 0.0, False),
        ("quiet", "depth", 0.0, False)]
    assert [a["queue"] for a in client.get("/alerts?firing=true").json()] == ["emails"]
    assert client.get("/alerts?queue=quiet").json()[0]["threshold"] == 10.0
    assert client.get("/alerts?queue=nope").status_code == 404

    busy = client.get("/busy").json()
    assert [(j["id"], j["task"], j["worker"], j["running_for"], j["progress"],
             j["progress_message"], j["attempt"]) for j in busy] == [
        (running.id, "send", "w1", 7.0, 0.5, "half", 1)]
    assert client.get("/busy?queue=quiet").json() == []
    assert client.get("/busy?limit=0").status_code == 422

    text = client.get("/metrics").text
    assert 'pq_queue_alert_firing{kind="depth",queue="emails"} 1.0' in text
    assert 'pq_queue_alert_firing{kind="dead_letters",queue="emails"} 0.0' in text
    assert 'pq_queue_alert_threshold{kind="depth",queue="quiet"} 10.0' in text
    assert 'pq_queue_alert_value{kind="depth",queue="emails"} 2.0' in text
    assert 'pq_queue_retry_pending_jobs{queue="emails"} 0.0' in text
