"""What runs now (ops console), lost workers, and queue alerts in both consoles (AppTest, real
database)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from console_helpers import click, messages, plain, run
from streamlit.testing.v1 import AppTest

from persistent_queue import Queue

Console = Callable[[str], AppTest]


def admin_page(app: AppTest, name: str) -> AppTest:
    app.radio(key="admin_page").set_value(name)
    return run(app)


def frame_with(app: AppTest, column: str) -> pd.DataFrame:
    [found] = [d.value for d in app.dataframe if column in d.value.columns]
    return found


def lost_worker(console_db: Path | str, worker: str) -> None:
    """A consumer registered two minutes ago that never beat again nor said goodbye."""
    with Queue(console_db, durability="normal", clock=lambda: time.time() - 120) as past:
        past.register_worker(worker, kind="consumer", queues=["emails"])


def test_running_now_shows_each_running_job_its_worker_and_progress(
    open_console: Console, db: Queue, console_db: Path | str
) -> None:
    db.create_queue("images", visibility_timeout=300)
    job = db.enqueue("images", {"file": "cat.png"}, headers={"task": "tasks.resize"})
    db.enqueue("images", {"file": "dog.png"})  # not claimed: not running
    claimed = db.dequeue("images", worker="consumer-9")
    assert claimed is not None and claimed.id == job.id
    db.set_progress(claimed, 0.4, "resizing 2 of 5")
    db.register_worker("consumer-9", kind="consumer", queues=["images"])
    lost_worker(console_db, "consumer-gone")
    app = open_console("ops_console.py")
    running = frame_with(app, "running for").set_index("job")
    assert list(running.index) == [job.id]
    row = running.loc[job.id]
    assert (row["queue"], row["task"], row["worker"], row["attempt"]) == (
        "images", "tasks.resize", "consumer-9", 1)
    assert row["progress"] == 0.4 and row["message"] == "resizing 2 of 5"
    assert row["lease ends in"].startswith("4m ")  # of a 300 s lease
    consumers = frame_with(app, "last heartbeat").set_index("worker")
    assert consumers.loc["consumer-9", "state"] == "running"
    assert consumers.loc["consumer-9", "jobs"] == str(job.id)
    assert consumers.loc["consumer-gone", "state"] == "lost"
    assert any("1 lost" in c.value and "pq workers prune" in c.value for c in app.caption)


def test_running_now_with_nothing_running(open_console: Console, db: Queue) -> None:
    db.enqueue("emails", {"n": 1})
    app = open_console("ops_console.py")
    assert "No job is running now." in messages(app, "info")


def test_admin_metrics_show_lost_workers_with_the_retention(
    open_console: Console, db: Queue, console_db: Path | str
) -> None:
    db.register_worker("consumer-1", kind="consumer", queues=["emails"])
    lost_worker(console_db, "consumer-killed")
    app = open_console("admin_console.py")
    workers = frame_with(app, "last heartbeat").set_index("id")
    assert workers.loc["consumer-killed", "state"] == "lost"
    assert any(c.value.startswith("1 running, 1 lost, of 2 registered") and "7d" in c.value
               for c in app.caption)


def badges(app: AppTest) -> list[str]:
    return [plain(m.value) for m in app.markdown if "Alerts firing" in m.value]


def test_firing_alerts_show_in_both_consoles(open_console: Console, db: Queue) -> None:
    db.create_queue("emails", alert_depth=2, alert_dead_letters=5)
    db.create_queue("calm", alert_depth=100)
    db.enqueue_many("emails", [{"n": n} for n in range(3)])
    ops = open_console("ops_console.py")
    [line] = badges(ops)
    assert "emails: depth 3 ≥ 2" in line and "calm" not in line and "dead_letters" not in line
    admin = open_console("admin_console.py")
    assert "emails: depth 3 ≥ 2" in badges(admin)[0]
    by_state = admin.dataframe[0].value.set_index("queue")
    assert (by_state.loc["emails", "alerts"], by_state.loc["calm", "alerts"]) == (
        "depth 3 ≥ 2", "")
    queues = admin_page(admin, "Queues")
    assert queues.dataframe[0].value.set_index("queue").loc["emails", "alerts"] == "depth 3 ≥ 2"


def test_alert_thresholds_are_edited_on_the_queues_page(open_console: Console,
                                                        db: Queue) -> None:
    db.create_queue("emails")
    app = admin_page(open_console("admin_console.py"), "Queues")
    app.number_input(key="edit_emails_alert_depth").set_value(50)
    app.number_input(key="edit_emails_alert_oldest_age").set_value(300.0)
    app.number_input(key="edit_emails_alert_failure_rate").set_value(20.0)
    app.number_input(key="edit_emails_alert_dead_letters").set_value(3)
    click(app, "Save settings")
    assert messages(app, "success") == ["Saved the settings of queue 'emails'."]
    info = db.get_queue("emails")
    assert (info.alert_depth, info.alert_oldest_age, info.alert_failure_rate,
            info.alert_dead_letters) == (50, 300.0, 0.2, 3)
    assert app.number_input(key="edit_emails_alert_failure_rate").value == 20.0
    app.number_input(key="edit_emails_alert_depth").set_value(0)
    click(app, "Save settings")
    assert db.get_queue("emails").alert_depth is None
    assert db.get_queue("emails").alert_dead_letters == 3


def test_a_queue_is_created_with_alert_thresholds(open_console: Console, db: Queue) -> None:
    app = admin_page(open_console("admin_console.py"), "Queues")
    app.text_input(key="create_name").set_value("reports")
    app.number_input(key="create_alert_depth").set_value(10)
    click(app, "Create queue")
    assert messages(app, "success") == ["Created queue 'reports'."]
    assert db.get_queue("reports").alert_depth == 10


def test_alert_texts_show_each_kind_in_its_unit() -> None:
    from persistent_queue.console.frames import alert_text, firing
    from persistent_queue.models import Alert

    alerts = [Alert("a", "depth", 12, 10, True), Alert("a", "oldest_age", 302, 300, True),
              Alert("a", "failure_rate", 0.4, 0.2, True), Alert("b", "dead_letters", 1, 5, False)]
    assert [alert_text(a) for a in alerts] == [
        "depth 12 ≥ 10", "oldest_age 5m 02s ≥ 5m 00s", "failure_rate 40.0% ≥ 20.0%",
        "dead_letters 1 < 5"]
    assert firing(alerts) == {"a": ["depth 12 ≥ 10", "oldest_age 5m 02s ≥ 5m 00s",
                                    "failure_rate 40.0% ≥ 20.0%"]}
