"""Control of running jobs in the consoles: the ops console's job detail (timeline, progress,
Cancel / Delete / Retry now, each disabled with its reason where the state does not allow it)
and the admin console's edit of a dead letter's payload before its redrive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from console_helpers import click, messages, plain, run
from streamlit.testing.v1 import AppTest

from persistent_queue import JobNotFound, JobState, Queue

Console = Callable[[str], AppTest]


def detail(open_console: Console, job_id: int) -> AppTest:
    """The ops console showing job ``job_id``'s detail."""
    app = open_console("ops_console.py")
    app.number_input(key="detail_id").set_value(job_id)
    return run(app)


def enabled(app: AppTest) -> dict[str, bool]:
    """The job detail's action buttons: whether each can be clicked."""
    return {key: not app.button(key=key).disabled
            for key in ("detail_cancel", "detail_delete", "detail_retry")}


def captions(app: AppTest) -> list[str]:
    return [plain(str(c.value)) for c in app.caption]


def attempt_run(app: AppTest) -> dict[str, Any]:
    """The job detail's row about its attempt: worker, started, run time, timeout."""
    [frame] = [f.value for f in app.dataframe if "timeout" in f.value.columns]
    row: dict[str, Any] = frame.to_dict("records")[0]
    return row


def timeline(app: AppTest) -> list[dict[str, Any]]:
    """The timeline's rows (the last dataframe of the page)."""
    rows: list[dict[str, Any]] = app.dataframe[-1].value.to_dict("records")
    return rows


def test_a_running_job_shows_its_progress_worker_and_can_be_cancelled(
    open_console: Console, db: Queue
) -> None:
    job = db.enqueue("reports", {"day": "monday"}, timeout=300)
    claimed = db.dequeue("reports", worker="worker-7")
    assert claimed is not None
    db.set_progress(claimed, 0.4, "part 4 of 10")
    app = detail(open_console, job.id)
    [bar] = app.get("progress")
    assert bar.proto.value == 40 and plain(bar.proto.text) == "40%: part 4 of 10"
    run_row = attempt_run(app)
    assert run_row["worker"] == "worker-7" and run_row["timeout"] == "300 s"
    assert enabled(app) == {"detail_cancel": True, "detail_delete": False,
                            "detail_retry": False}
    assert "Delete job: not available, the job is running: cancel it first." in captions(app)

    app.text_input(key="detail_cancel_reason").set_value("wrong day")
    click(app, "Cancel job")
    assert messages(app, "success") == [
        f"Cancellation of job {job.id} requested: its worker (worker-7) stops it and the job "
        "ends cancelled."]
    stored = db.get_job(job.id)
    assert stored.state is JobState.LEASED and stored.cancel_requested
    assert stored.cancel_reason == "wrong day"
    assert enabled(app)["detail_cancel"] is False
    assert ("Cancel job: not available, cancellation already requested: its worker stops it."
            in captions(app))
    assert "Cancellation requested: wrong day" in [t.value for t in app.text]

    db.confirm_cancel(claimed)  # what its worker does once the handler stopped
    run(app)
    assert {m.label: m.value for m in app.metric}["State"] == "cancelled"
    assert not app.get("progress")
    rows = timeline(app)
    assert [r["event"] for r in rows] == ["enqueued", "claimed", "cancel_requested",
                                          "cancelled"]
    ended = rows[-1]
    assert ended["worker"] == "worker-7" and ended["run time"].endswith(" s")
    assert rows[1]["worker"] == "worker-7" and rows[1]["attempt"] == 1


def test_a_queued_job_is_cancelled_at_once_then_deleted_after_confirmation(
    open_console: Console, db: Queue
) -> None:
    job = db.enqueue("emails", {"to": "a@b.c"})
    app = detail(open_console, job.id)
    assert enabled(app) == {"detail_cancel": True, "detail_delete": True,
                            "detail_retry": False}
    assert ("Retry now: not available, the job is already claimable: there is no delay to "
            "skip." in captions(app))
    click(app, "Cancel job")
    assert messages(app, "success") == [f"Cancelled job {job.id}: it will not run."]
    assert db.get_job(job.id).state is JobState.CANCELLED
    assert db.dequeue("emails") is None
    assert enabled(app) == {"detail_cancel": False, "detail_delete": True,
                            "detail_retry": False}

    click(app, "Delete job")
    assert messages(app, "error") == [f"tick the box to delete job {job.id} for good"]
    assert db.get_job(job.id).state is JobState.CANCELLED
    app.checkbox(key=f"detail_delete_confirm_{job.id}").check()
    click(app, "Delete job")
    assert messages(app, "success") == [f"Deleted job {job.id} with its history."]
    with pytest.raises(JobNotFound):
        db.get_job(job.id)
    assert "Pick a job to see its payload and history." in captions(app)
    assert not messages(app, "error") and not messages(app, "warning")


def test_retry_now_makes_a_delayed_job_claimable(open_console: Console, db: Queue) -> None:
    job = db.enqueue("later", {"n": 1}, delay=3600)
    app = detail(open_console, job.id)
    assert enabled(app)["detail_retry"] is True
    click(app, "Retry now")
    assert messages(app, "success") == [f"Job {job.id} is ready: the next claim may take it."]
    claimed = db.dequeue("later")
    assert claimed is not None and claimed.id == job.id
    run(app)
    assert enabled(app)["detail_retry"] is False


def test_a_done_job_shows_who_ran_it_and_for_how_long(open_console: Console, db: Queue) -> None:
    job = db.enqueue("emails", {"to": "a@b.c"})
    claimed = db.dequeue("emails", worker="consumer-1")
    assert claimed is not None
    db.ack(claimed)
    app = detail(open_console, job.id)
    rows = timeline(app)
    assert [(r["event"], r["attempt"], r["worker"]) for r in rows] == [
        ("enqueued", 0, ""), ("claimed", 1, "consumer-1"), ("acked", 1, "consumer-1")]
    assert rows[-1]["run time"].endswith(" s") and rows[0]["run time"] == ""
    run_row = attempt_run(app)
    assert run_row["worker"] == "consumer-1" and run_row["timeout"] == "none"
    assert run_row["run time"].endswith(" s")
    assert enabled(app) == {"detail_cancel": False, "detail_delete": True,
                            "detail_retry": False}
    assert "Cancel job: not available, the job is done: there is nothing to cancel." in (
        captions(app))


def test_a_dead_job_offers_no_action_and_says_where_to_go(open_console: Console,
                                                          db: Queue) -> None:
    job = db.enqueue("webhooks", {"n": 1}, max_attempts=1)
    claimed = db.dequeue("webhooks")
    assert claimed is not None
    db.nack(claimed, error="HTTP 500")
    app = detail(open_console, job.id)
    assert enabled(app) == {"detail_cancel": False, "detail_delete": False,
                            "detail_retry": False}
    said = captions(app)
    assert ("Delete job: not available, the job is dead-lettered: purge it on the admin "
            "console." in said)
    assert [r["event"] for r in timeline(app)][-1] == "dead_lettered"


def test_a_dead_letters_payload_is_edited_then_redriven(open_console: Console,
                                                        db: Queue) -> None:
    job = db.enqueue("webhooks", {"url": "http://old.example"}, max_attempts=1)
    claimed = db.dequeue("webhooks")
    assert claimed is not None
    db.nack(claimed, error="HTTP 410")
    app = open_console("admin_console.py")
    app.radio(key="admin_page").set_value("Dead letters")
    run(app)
    area = app.text_area(key=f"dead_payload_{job.id}")
    assert area.value == '{\n  "url": "http://old.example"\n}'

    area.set_value('{"url": ')
    click(app, "Save payload")
    assert messages(app, "error") == [
        "the payload is not valid JSON: Expecting value at line 1, column 9"]
    app.text_area(key=f"dead_payload_{job.id}").set_value('{"n": NaN}')
    click(app, "Save payload")
    assert messages(app, "error") == ["payload holds nan, which JSON cannot represent"]
    assert db.dead_letters()[0].payload == {"url": "http://old.example"}

    app.text_area(key=f"dead_payload_{job.id}").set_value('{"url": "http://new.example"}')
    click(app, "Save payload")
    assert messages(app, "success") == [
        f"Saved the payload of job {job.id}: a redrive runs it with this one."]
    assert db.dead_letters()[0].payload == {"url": "http://new.example"}
    click(app, f"Redrive job {job.id}")
    again = db.dequeue("webhooks")
    assert again is not None and again.payload == {"url": "http://new.example"}
