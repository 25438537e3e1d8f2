"""The ops console, driven through Streamlit's AppTest against a real database."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from console_helpers import click, messages, run
from streamlit.testing.v1 import AppTest

from persistent_queue import JobState, Queue
from tests.support import wait_for

Console = Callable[[str], AppTest]


def test_enqueue_form_stores_the_job_and_shows_it(open_console: Console, db: Queue) -> None:
    app = open_console("ops_console.py")
    app.text_input(key="enq_new_queue").set_value("emails")
    app.text_area(key="enq_payload").set_value('{"to": "a@b.c", "n": [1, 2]}')
    app.number_input(key="enq_priority").set_value(7)
    app.number_input(key="enq_attempts").set_value(3)
    app.text_area(key="enq_headers").set_value("tenant=acme\nregion = eu")
    click(app, "Enqueue")
    [job] = db.list_jobs("emails")
    assert messages(app, "success") == [f"Enqueued job {job.id} on queue 'emails'."]
    assert job.payload == {"to": "a@b.c", "n": [1, 2]}
    assert (job.priority, job.max_attempts) == (7, 3)
    assert job.headers == {"tenant": "acme", "region": "eu"}
    assert any(json.loads(j.value)["id"] == job.id for j in app.json)  # the job is shown


def test_enqueue_with_a_delay_schedules_the_job(open_console: Console, db: Queue) -> None:
    db.create_queue("later")
    app = open_console("ops_console.py")
    app.selectbox(key="enq_queue").set_value("later")
    app.number_input(key="enq_delay").set_value(3600.0)
    click(app, "Enqueue")
    assert db.stats("later").scheduled == 1
    assert db.dequeue("later") is None


def test_bad_input_gives_readable_messages_and_stores_nothing(
    open_console: Console, db: Queue
) -> None:
    app = open_console("ops_console.py")
    app.text_input(key="enq_new_queue").set_value("emails")
    app.text_area(key="enq_payload").set_value('{"to": ')
    click(app, "Enqueue")
    assert messages(app, "error") == [
        "the payload is not valid JSON: Expecting value at line 1, column 8"]
    app.text_area(key="enq_payload").set_value("{}")
    app.text_area(key="enq_headers").set_value("no equals sign")
    click(app, "Enqueue")
    assert "header line 1 is not key=value" in messages(app, "error")[0]
    app.text_area(key="enq_headers").set_value("")
    app.text_input(key="enq_new_queue").set_value("bad name!")
    click(app, "Enqueue")
    assert "bad name!" in messages(app, "error")[0]
    assert db.list_queues() == []


def test_claim_then_ack_finishes_the_job(open_console: Console, db: Queue) -> None:
    job = db.enqueue("emails", {"to": "a@b.c"})
    app = open_console("ops_console.py")
    app.selectbox(key="claim_queue").set_value("emails")
    app.number_input(key="claim_timeout").set_value(120.0)
    click(app, "Claim next job")
    assert messages(app, "success") == [f"Claimed job {job.id} for 2m 00s."]
    assert db.get_job(job.id).state is JobState.LEASED
    assert app.session_state["pq_claimed"].id == job.id
    assert any("Lease ends in" in str(p.proto.text) for p in app.get("progress"))
    click(app, "Ack")
    assert messages(app, "success") == [f"Acked job {job.id}: it is done."]
    assert db.get_job(job.id).state is JobState.DONE
    assert app.session_state["pq_claimed"] is None


def test_claim_from_an_empty_queue_says_so(open_console: Console, db: Queue) -> None:
    db.create_queue("empty")
    app = open_console("ops_console.py")
    click(app, "Claim next job")
    assert "No job is ready in queue 'empty' (empty, delayed, leased or paused)." in messages(
        app, "info")


def test_nack_records_the_error_and_requeue_does_not_count(
    open_console: Console, db: Queue
) -> None:
    job = db.enqueue("emails", {"n": 1})
    app = open_console("ops_console.py")
    click(app, "Claim next job")
    app.text_input(key="claim_error").set_value("SMTP said no")
    click(app, "Nack")
    assert messages(app, "success")[0].startswith(f"Nacked job {job.id}: back in the queue")
    stored = db.get_job(job.id)
    assert (stored.attempts, stored.last_error) == (1, "SMTP said no")
    assert [e.event for e in db.history(job.id)] == ["enqueued", "claimed", "failed"]

    wait_for(lambda: db.stats("emails").ready == 1, timeout=30, message="backoff to pass")
    click(app, "Claim next job")
    app.number_input(key="claim_extend").set_value(600.0)
    click(app, "Extend lease")
    assert "it now ends in 10m 00s" in messages(app, "success")[0]
    assert db.get_job(job.id).lease_expires_at > db.now() + 500
    click(app, "Requeue")
    stored = db.get_job(job.id)
    assert stored.state is JobState.READY and stored.attempts == 1  # the requeue was free


def test_stale_lease_gives_a_readable_message(open_console: Console, db: Queue) -> None:
    job = db.enqueue("emails", {"n": 1})
    app = open_console("ops_console.py")
    app.number_input(key="claim_timeout").set_value(1.0)
    click(app, "Claim next job")
    # The lease runs out and another consumer takes the job.
    other = wait_for(lambda: db.dequeue("emails", visibility_timeout=300), timeout=30,
                     message="the console's lease to expire")
    assert other.id == job.id
    click(app, "Ack")
    [error] = messages(app, "error")
    assert error.startswith("The lease is no longer yours:")
    assert "claim the job again" in error
    assert db.get_job(job.id).state is JobState.LEASED  # the other consumer still holds it
    assert app.session_state["pq_claimed"] is None


def test_browse_filters_by_queue_state_header_and_text(open_console: Console, db: Queue) -> None:
    for n in range(30):
        db.enqueue("emails", {"n": n, "to": f"user{n}@example.com"},
                   headers={"tenant": "acme" if n % 2 else "globex"})
    db.enqueue("sms", {"to": "+100"})
    done = db.dequeue("sms")
    assert done is not None
    db.ack(done)
    app = open_console("ops_console.py")

    def ids() -> list[int]:
        return list(app.dataframe[0].value["id"])

    assert len(ids()) == 25 and ids()[0] == done.id  # newest first, first page
    app.selectbox(key="browse_page_size").set_value(25)
    app.number_input(key="browse_page").set_value(2)
    run(app)
    assert len(ids()) == 6
    app.number_input(key="browse_page").set_value(1)
    app.selectbox(key="browse_state").set_value("done")
    run(app)
    assert ids() == [done.id]
    app.selectbox(key="browse_state").set_value("(all)")
    app.selectbox(key="browse_queue").set_value("emails")
    app.text_input(key="browse_header").set_value("tenant=acme")
    run(app)
    assert len(ids()) == 15
    assert set(app.dataframe[0].value["queue"]) == {"emails"}
    app.text_input(key="browse_text").set_value("USER17@")
    run(app)
    [row] = ids()
    assert db.get_job(row).payload["n"] == 17
    app.text_input(key="browse_text").set_value("nowhere")
    run(app)
    assert "No job matches these filters on this page." in messages(app, "info")
    app.text_input(key="browse_header").set_value("broken")
    run(app)
    assert "header line 1 is not key=value" in messages(app, "error")[0]


def test_job_detail_shows_the_whole_history(open_console: Console, db: Queue) -> None:
    job = db.enqueue("emails", {"to": "a@b.c"}, max_attempts=2)
    for error in ("timeout", "refused"):
        claimed = wait_for(lambda: db.dequeue("emails"), timeout=30, message="a retry")
        db.nack(claimed, error=error, delay=0)
    app = open_console("ops_console.py")
    app.number_input(key="detail_id").set_value(job.id)
    run(app)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["State"] == "dead" and metrics["Attempts"] == "2 / 2"
    history = app.dataframe[-1].value
    failures = history[history["event"] == "failed"]
    assert list(history["event"])[:3] == ["enqueued", "claimed", "failed"]
    assert list(failures["detail"]) == ["timeout", "refused"]
    assert "dead_lettered" in list(history["event"]) or "dead" in " ".join(history["event"])
    app.number_input(key="detail_id").set_value(999_999)
    run(app)
    assert any("999999" in m for m in messages(app, "error"))


def test_password_gate_shows_nothing_before_login(
    open_console: Console, db: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PQ_CONSOLE_PASSWORD", "s3cret")
    db.enqueue("secret-queue", {"x": 1})
    app = open_console("ops_console.py")
    assert not app.tabs and not app.dataframe
    assert [t.label for t in app.text_input] == ["Password"]
    app.text_input[0].set_value("wrong")
    click(app, "Log in")
    assert messages(app, "error") == ["Wrong password."] and not app.tabs
    app.text_input[0].set_value("s3cret")
    click(app, "Log in")
    assert [t.label for t in app.tabs] == ["Enqueue", "Publish", "Claim", "Running now",
                                          "Browse jobs"]
