"""What a new operator hit in the consoles, each pinned by a test (AppTest, real database)."""

from __future__ import annotations

import json
from collections.abc import Callable

from console_helpers import click, run
from streamlit.testing.v1 import AppTest

from persistent_queue import Queue
from persistent_queue.console.frames import SERIES_COLOURS

Console = Callable[[str], AppTest]
RED = SERIES_COLOURS["failed"]


def admin_page(app: AppTest, name: str) -> AppTest:
    app.radio(key="admin_page").set_value(name)
    return run(app)


def job_detail(open_console: Console, job_id: int) -> AppTest:
    app = open_console("ops_console.py")
    app.number_input(key="detail_id").set_value(job_id)
    return run(app)


def json_bodies_parse(app: AppTest) -> None:
    """Every st.json element holds JSON text: a str given to st.json is parsed by the browser
    and shown as "Json Parse Error"."""
    for element in app.json:
        json.loads(element.proto.body)


def codes(app: AppTest) -> list[str]:
    return [str(c.value) for c in app.code]


def dead_letter(db: Queue, queue: str, payload: object, error: str = "boom") -> int:
    db.create_queue(queue, max_attempts=1, exist_ok=True)
    job = db.enqueue(queue, payload)
    claimed = db.dequeue(queue)
    assert claimed is not None and claimed.id == job.id
    db.nack(claimed, error=error)
    return job.id


def test_a_plain_text_payload_shows_as_text_in_the_job_detail(open_console: Console,
                                                              db: Queue) -> None:
    job = db.enqueue("lines", "hello from input.txt")
    app = job_detail(open_console, job.id)
    json_bodies_parse(app)
    assert "hello from input.txt" in codes(app)


def test_a_plain_text_payload_shows_as_text_in_the_dead_letter_detail(open_console: Console,
                                                                     db: Queue) -> None:
    dead_letter(db, "lines", "a line that failed")
    app = admin_page(open_console("admin_console.py"), "Dead letters")
    json_bodies_parse(app)
    assert "a line that failed" in codes(app)


def test_the_dead_letter_table_previews_each_payload(open_console: Console, db: Queue) -> None:
    dead_letter(db, "hooks", {"url": "https://example.com/" + "x" * 300})
    app = admin_page(open_console("admin_console.py"), "Dead letters")
    frame = app.dataframe[0].value
    assert list(frame.columns[:3]) == ["id", "queue", "payload"]
    preview = frame["payload"].iloc[0]
    assert preview.startswith('{"url": "https://example.com/xxx') and len(preview) <= 60
    assert json.loads(app.dataframe[0].proto.columns)["payload"]["width"] == "medium"


def test_the_jobs_table_gives_the_payload_room(open_console: Console, db: Queue) -> None:
    db.enqueue("emails", {"to": "ada@example.com"})
    app = open_console("ops_console.py")
    [jobs] = [d for d in app.dataframe if "payload" in d.value.columns]
    assert json.loads(jobs.proto.columns)["payload"]["width"] == "large"


def test_the_metrics_tables_fit_and_use_short_labels(open_console: Console, db: Queue) -> None:
    db.enqueue("emails", {"n": 1})
    app = open_console("admin_console.py")
    by_state = app.dataframe[0].value
    # The queues' settings live on the Queues page: the state table fits the page.
    assert "max attempts" not in by_state.columns and len(by_state.columns) <= 14
    assert all(len(label) <= 12 for label in by_state.columns)
    helps = json.loads(app.dataframe[0].proto.columns)
    assert "failure" in helps["retrying"]["help"]


def test_failures_are_red_in_every_chart(open_console: Console, db: Queue) -> None:
    db.enqueue("emails", {"n": 1})
    job = db.dequeue("emails")
    assert job is not None
    db.nack(job, error="SMTP 451")
    db.register_worker("consumer-1", kind="consumer", queues=["emails"])
    db.heartbeat_worker("consumer-1", processed=5, failed=1)
    app = open_console("admin_console.py")
    charts = [json.loads(c.proto.spec) for c in app.get("vega_lite_chart")]
    assert len(charts) == 2  # throughput, and jobs per consumer
    for spec in charts:
        scale = spec["encoding"]["color"]["scale"]
        assert scale["range"][scale["domain"].index("failed")] == RED, spec["encoding"]
        success = "acked" if "acked" in scale["domain"] else "processed"
        assert scale["range"][scale["domain"].index(success)] == SERIES_COLOURS["acked"]


def test_jobs_waiting_to_retry_are_those_pending_now_not_all_time_failures(
    open_console: Console, db: Queue
) -> None:
    db.enqueue("emails", {"n": 1})
    first = db.dequeue("emails")
    assert first is not None
    db.nack(first, error="try again", delay=0)
    again = db.dequeue("emails")
    assert again is not None
    db.ack(again)  # failed once, then done: nothing waits for a retry
    db.enqueue("emails", {"n": 2})
    second = db.dequeue("emails")
    assert second is not None
    db.nack(second, error="later", delay=3600)  # this one waits for its retry
    app = open_console("admin_console.py")
    retries = app.dataframe[1].value.set_index("queue")
    assert retries.loc["emails", "waiting to retry"] == 1
    assert retries.loc["emails", "failed attempts (window)"] == 2
    assert app.dataframe[0].value.set_index("queue").loc["emails", "retrying"] == 1


def test_a_finished_job_shows_no_available_at(open_console: Console, db: Queue) -> None:
    db.enqueue("emails", {"n": 1}, delay=0)
    job = db.dequeue("emails")
    assert job is not None
    db.ack(job)
    app = job_detail(open_console, job.id)
    times = app.table[0].value
    assert "finished" in times.columns and "available at" not in times.columns
    waiting = db.enqueue("emails", {"n": 2}, delay=600)
    app.number_input(key="detail_id").set_value(waiting.id)
    assert "available at" in run(app).table[0].value.columns


def test_the_claim_tab_keeps_its_queue_after_an_ack(open_console: Console, db: Queue) -> None:
    db.enqueue("alpha", {"n": 1})
    db.enqueue("beta", {"n": 2})
    app = open_console("ops_console.py")
    app.selectbox(key="claim_queue").set_value("beta")
    click(app, "Claim next job")
    assert app.session_state["pq_claimed"].queue == "beta"
    click(app, "Ack")
    assert app.selectbox(key="claim_queue").value == "beta"


def test_the_timeline_of_a_done_job_ends_with_its_result(open_console: Console,
                                                         db: Queue) -> None:
    job = db.enqueue("reports", {"month": "2026-11"})
    claimed = db.dequeue("reports", worker="consumer-7")
    assert claimed is not None
    db.ack(claimed, result={"rows": 42})
    app = job_detail(open_console, job.id)
    [timeline] = [d.value for d in app.dataframe if "event" in d.value.columns]
    assert list(timeline["event"]) == ["enqueued", "claimed", "acked", "result"]
    assert timeline["worker"].iloc[1] == "consumer-7"
    assert timeline["detail"].iloc[-1] == '{"rows": 42}'


def test_the_dead_letter_detail_shows_the_timeline(open_console: Console, db: Queue) -> None:
    dead_letter(db, "hooks", {"url": "https://example.com"}, error="HTTP 410 Gone")
    app = admin_page(open_console("admin_console.py"), "Dead letters")
    [timeline] = [d.value for d in app.dataframe if "event" in d.value.columns]
    assert list(timeline["event"]) == ["enqueued", "claimed", "failed", "dead_lettered"]
    assert timeline["detail"].iloc[2] == "HTTP 410 Gone"
