"""The admin console, driven through Streamlit's AppTest against a real database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from console_helpers import click, messages, plain, run
from streamlit.testing.v1 import AppTest

from persistent_queue import Queue, QueueNotFound

Console = Callable[[str], AppTest]


def page(app: AppTest, name: str) -> AppTest:
    app.radio(key="admin_page").set_value(name)
    return run(app)


def dead_letter(db: Queue, queue: str, error: str) -> int:
    db.create_queue(queue, max_attempts=1, exist_ok=True)
    job = db.enqueue(queue, {"why": error})
    claimed = db.dequeue(queue)
    assert claimed is not None and claimed.id == job.id
    db.nack(claimed, error=error)
    return job.id


def test_metrics_show_counts_throughput_retries_and_workers(
    open_console: Console, db: Queue
) -> None:
    for n in range(4):
        db.enqueue("emails", {"n": n})
    claimed = db.dequeue("emails")
    assert claimed is not None
    db.ack(claimed)
    failing = db.dequeue("emails")
    assert failing is not None
    db.nack(failing, error="boom", delay=3600)
    dead_letter(db, "webhooks", "gone")
    db.register_worker("consumer-1", kind="consumer", queues=["emails"])
    db.heartbeat_worker("consumer-1", processed=41, failed=2)
    app = open_console("admin_console.py")
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Queues"] == "2"
    assert metrics["Ready now"] == "2" and metrics["Scheduled"] == "1"
    assert metrics["Dead letters"] == "1"
    frames = [d.value for d in app.dataframe]
    by_state = frames[0].set_index("queue")
    assert by_state.loc["emails", "ready"] == 2 and by_state.loc["emails", "done"] == 1
    assert by_state.loc["webhooks", "dead"] == 1
    retries = frames[1].set_index("queue")
    assert retries.loc["emails", "failed attempts (window)"] == 1
    assert retries.loc["emails", "acked (window)"] == 1
    workers = frames[2].set_index("id")
    assert workers.loc["consumer-1", "processed"] == 41
    assert workers.loc["consumer-1", "state"] == "running"
    assert len(app.get("vega_lite_chart")) == 2  # throughput and per-consumer charts


def test_metrics_of_an_empty_database(open_console: Console, db: Queue) -> None:
    app = open_console("admin_console.py")
    assert {m.label: m.value for m in app.metric}["Queues"] == "0"
    assert any("No process has registered yet" in c.value for c in app.caption)


def test_create_pause_resume_update_and_delete_a_queue(open_console: Console, db: Queue) -> None:
    app = page(open_console("admin_console.py"), "Queues")
    app.text_input(key="create_name").set_value("reports")
    app.number_input(key="create_attempts").set_value(9)
    app.number_input(key="create_timeout").set_value(120.0)
    app.number_input(key="create_max_size").set_value(100)
    click(app, "Create queue")
    assert messages(app, "success") == ["Created queue 'reports'."]
    info = db.get_queue("reports")
    assert (info.max_attempts, info.visibility_timeout, info.max_size) == (9, 120.0, 100)

    click(app, "Create queue")
    assert "reports" in messages(app, "error")[0]  # already exists: readable, no traceback
    app.text_input(key="create_name").set_value("no spaces allowed")
    click(app, "Create queue")
    assert "no spaces allowed" in messages(app, "error")[0]
    app.text_input(key="create_name").set_value("reports")

    click(app, "Pause")
    assert db.get_queue("reports").paused
    click(app, "Resume")
    assert not db.get_queue("reports").paused

    app.number_input(key="edit_attempts_reports").set_value(2)
    app.number_input(key="edit_max_size_reports").set_value(0)
    click(app, "Save settings")
    info = db.get_queue("reports")
    assert (info.max_attempts, info.max_size) == (2, None)

    db.enqueue("reports", {"n": 1})
    app.text_input(key="delete_confirm").set_value("wrong")
    click(app, "Delete queue")
    assert messages(app, "error") == ["type the queue name 'reports' to confirm"]
    app.text_input(key="delete_confirm").set_value("reports")
    click(app, "Delete queue")
    assert "unfinished" in messages(app, "error")[0]  # refuses: a job is pending
    db.get_queue("reports")
    app.checkbox(key="delete_force").check()
    app.text_input(key="delete_confirm").set_value("reports")
    click(app, "Delete queue")
    assert messages(app, "success") == ["Deleted queue 'reports'."]
    with pytest.raises(QueueNotFound):
        db.get_queue("reports")


def test_deleting_a_queue_reports_its_schedules_and_subscriptions(open_console: Console,
                                                                  db: Queue) -> None:
    db.create_queue("reports")
    db.schedule("reports", {}, every=3600, name="nightly")
    db.subscribe("orders", queue="reports")
    app = page(open_console("admin_console.py"), "Queues")
    app.text_input(key="delete_confirm").set_value("reports")
    click(app, "Delete queue")
    assert messages(app, "success") == [
        "Deleted queue 'reports' with its schedule 'nightly' and its subscription to topic "
        "'orders'."]
    assert db.list_schedules() == [] and db.subscriptions() == []


def test_purge_needs_the_name_typed(open_console: Console, db: Queue) -> None:
    for n in range(3):
        db.enqueue("emails", {"n": n})
    app = page(open_console("admin_console.py"), "Queues")
    click(app, "Purge queue")
    assert messages(app, "error") == ["type the queue name 'emails' to confirm"]
    assert db.stats("emails").ready == 3
    app.text_input(key="purge_confirm").set_value("emails")
    click(app, "Purge queue")
    assert messages(app, "success") == ["Purged 3 unfinished job(s) from 'emails'."]
    assert db.stats("emails").pending == 0


def test_dead_letters_list_inspect_redrive_and_purge(open_console: Console, db: Queue) -> None:
    first = dead_letter(db, "webhooks", "HTTP 410")
    second = dead_letter(db, "webhooks", "HTTP 500")
    third = dead_letter(db, "emails", "bounced")
    app = page(open_console("admin_console.py"), "Dead letters")
    table = app.dataframe[0].value
    assert set(table["id"]) == {first, second, third}
    assert set(table["last error"]) == {"HTTP 410", "HTTP 500", "bounced"}

    app.selectbox(key="dead_pick").set_value(first)
    run(app)
    assert any("HTTP 410" in c.value for c in app.code)
    click(app, f"Redrive job {first}")
    assert messages(app, "success") == [
        f"Redrove job {first} to its queue with its attempts reset."]
    assert db.get_job(first).attempts == 0 and db.stats("webhooks").ready == 1

    app.selectbox(key="dead_queue").set_value("webhooks")
    run(app)
    click(app, "Redrive all of webhooks")
    assert messages(app, "success") == ["Redrove 1 dead letter(s) of 'webhooks'.",
                                        "No dead letters in 'webhooks'."]
    assert [d.id for d in db.dead_letters()] == [third]

    dead_letter(db, "sms", "carrier down")
    app.selectbox(key="dead_queue").set_value("(all queues)")
    run(app)
    click(app, "Redrive all of (all queues)")
    assert messages(app, "success") == ["Redrove 2 dead letter(s) of every queue.",
                                        "No dead letters."]
    assert db.dead_letters() == []
    dead_letter(db, "push", "token expired")
    run(app)
    click(app, "Purge dead letters")
    assert messages(app, "error") == ["tick the confirmation box to purge dead letters"]
    app.checkbox(key="dead_purge_confirm").check()
    click(app, "Purge dead letters")
    assert messages(app, "success") == ["Deleted 1 dead letter(s) for good.", "No dead letters."]
    assert db.dead_letters() == []


def test_health_page_and_integrity_check(open_console: Console, db: Queue, backend: str
                                        ) -> None:
    db.enqueue("emails", {"n": 1})
    app = page(open_console("admin_console.py"), "Health")
    metrics = {m.label: plain(m.value) for m in app.metric}
    assert metrics["Schema version"] == str(db.schema_version())
    settings = dict(zip(app.dataframe[0].value["setting"], app.dataframe[0].value["value"],
                        strict=True))
    if backend == "sqlite":
        assert settings["journal_mode"] == "wal"
    else:  # the server's facts instead of the file's
        assert settings["PostgreSQL version"] == metrics["PostgreSQL"]
        assert settings["synchronous_commit"] in ("on", "off")
    assert not app.code
    click(app, "Run integrity check (reads the whole file)")
    assert [c.value for c in app.code] == ["ok"]
    assert messages(app, "success") == ["Healthy: integrity check ok."]


def test_password_gate_and_unreadable_database(
    open_console: Console, db: Queue, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PQ_CONSOLE_PASSWORD", "s3cret")
    app = open_console("admin_console.py")
    assert not app.metric and not app.sidebar.radio
    app.text_input[0].set_value("s3cret")
    click(app, "Log in")
    assert app.metric and app.radio(key="admin_page").value == "Metrics"

    monkeypatch.delenv("PQ_CONSOLE_PASSWORD")
    monkeypatch.setenv("PQ_DB", str(tmp_path))  # a directory, not a database
    broken = open_console("admin_console.py")
    assert any("Cannot open the database" in m for m in messages(broken, "error"))


@pytest.mark.sqlite_only
def test_no_connection_or_read_transaction_outlives_a_run(
    open_console: Console, db: Queue, console_db: Path
) -> None:
    """A reader left open between reruns would stop WAL checkpoints and let the WAL grow."""
    for n in range(200):
        db.enqueue("emails", {"n": n})
    app = open_console("admin_console.py")
    for name in ("Queues", "Dead letters", "Health", "Metrics"):
        page(app, name)
    assert db.backend.dialect.truncate_wal()  # type: ignore[attr-defined]
    assert Path(f"{console_db}-wal").stat().st_size == 0


def test_queue_limits_are_set_shown_and_removed_on_the_queues_page(
        open_console: Console, db: Queue) -> None:
    app = page(open_console("admin_console.py"), "Queues")
    app.text_input(key="create_name").set_value("webhooks")
    app.number_input(key="create_concurrency").set_value(2)
    app.text_input(key="create_rate_limit").set_value("50/s")
    app.number_input(key="create_group_concurrency").set_value(1)
    click(app, "Create queue")
    assert messages(app, "success") == ["Created queue 'webhooks'."]
    info = db.get_queue("webhooks")
    assert (info.concurrency, info.rate_limit, info.group_concurrency,
            info.group_rate_limit) == (2, "50/s", 1, None)

    db.enqueue_many("webhooks", [1, 2, 3], group_key="a")
    db.enqueue("webhooks", 4, group_key="b")
    assert len(db.dequeue_many("webhooks", 4)) == 2
    app = run(app)
    limits = next(d.value for d in app.dataframe if "throttled now" in d.value.columns)
    row = limits.set_index("queue").loc["webhooks"]
    assert (row["concurrency"], row["in flight"], row["rate limit"]) == (2, 2, "50/s")
    assert (row["throttled now"], row["held back"], row["throttled claims"]) == ("yes", 2, 1)

    app.text_input(key="edit_webhooks_rate_limit").set_value("fast")
    click(app, "Save settings")
    assert "rate_limit" in messages(app, "error")[0]  # readable, nothing changed
    assert db.get_queue("webhooks").rate_limit == "50/s"
    app.text_input(key="edit_webhooks_rate_limit").set_value("")
    app.number_input(key="edit_webhooks_concurrency").set_value(0)
    click(app, "Save settings")
    info = db.get_queue("webhooks")
    assert (info.concurrency, info.rate_limit, info.group_concurrency) == (None, None, 1)
