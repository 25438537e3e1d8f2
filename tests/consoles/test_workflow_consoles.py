"""Workflows in the consoles: dependencies, dedup and publish (ops); topics, schedules and
per-queue dedup/full counters (admin). Driven through AppTest against a real database."""

from __future__ import annotations

from collections.abc import Callable

from console_helpers import click, messages, run
from streamlit.testing.v1 import AppTest

from persistent_queue import JobState, Queue, QueueFull

Console = Callable[[str], AppTest]


def admin_page(app: AppTest, name: str) -> AppTest:
    app.radio(key="admin_page").set_value(name)
    return run(app)


def test_enqueue_with_dependencies_then_browse_waiting_jobs(open_console: Console,
                                                             db: Queue) -> None:
    first, second = db.enqueue("etl", "extract"), db.enqueue("etl", "transform")
    app = open_console("ops_console.py")
    app.selectbox(key="enq_queue").set_value("etl")
    app.text_input(key="enq_depends").set_value(f"{first.id}, {second.id}")
    click(app, "Enqueue")
    child = db.list_jobs("etl", state="waiting")[0]
    assert child.depends_on == (first.id, second.id)
    assert messages(app, "success") == [
        f"Enqueued job {child.id} on queue 'etl'; it waits for job(s) {first.id}, {second.id}."]
    app.selectbox(key="browse_state").set_value("waiting")
    app.number_input(key="detail_id").set_value(child.id)
    run(app)
    assert list(app.dataframe[0].value["id"]) == [child.id]
    assert any(f"job {first.id} (ready), job {second.id} (ready): it waits" in m.value
               for m in app.markdown)
    app.text_input(key="enq_depends").set_value("7, x")
    click(app, "Enqueue")
    assert messages(app, "error") == ["depends on: 'x' is not a job id"]
    app.text_input(key="enq_depends").set_value("999999")
    click(app, "Enqueue")
    assert "999999" in messages(app, "error")[0]
    assert len(db.list_jobs("etl")) == 3


def test_dedup_key_shows_the_existing_job(open_console: Console, db: Queue) -> None:
    existing = db.enqueue("mail", {"to": "a"}, dedup_key="user-7")
    app = open_console("ops_console.py")
    app.selectbox(key="enq_queue").set_value("mail")
    app.text_input(key="enq_dedup").set_value("user-7")
    click(app, "Enqueue")
    assert messages(app, "success") == [
        f"Deduplicated: existing job {existing.id} on queue 'mail' has this dedup key; "
        "nothing new was stored."]
    assert db.stats("mail").ready == 1 and db.stats("mail").dedup_hits == 1


def test_publish_to_a_topic(open_console: Console, db: Queue) -> None:
    app = open_console("ops_console.py")
    assert any("No topic has subscribers" in m for m in messages(app, "info"))
    app.text_input(key="pub_new_topic").set_value("orders")
    click(app, "Publish")
    assert "orders" in messages(app, "error")[0]  # no subscribers: readable, nothing stored
    db.subscribe("orders", queue="billing")
    db.subscribe("orders", queue="shipping")
    app = open_console("ops_console.py")
    app.selectbox(key="pub_topic").set_value("orders")
    app.text_area(key="pub_payload").set_value('{"order": 5}')
    click(app, "Publish")
    billing, shipping = db.list_jobs("billing")[0], db.list_jobs("shipping")[0]
    assert messages(app, "success") == [
        f"Published to 'orders': job {billing.id} in 'billing', job {shipping.id} in "
        "'shipping'."]
    assert billing.payload == shipping.payload == {"order": 5}


def test_admin_topics_subscribe_and_unsubscribe(open_console: Console, db: Queue) -> None:
    app = admin_page(open_console("admin_console.py"), "Workflows")
    app.text_input(key="sub_topic").set_value("orders")
    app.text_input(key="sub_queue").set_value("billing")
    click(app, "Subscribe")
    assert messages(app, "success") == ["Subscribed 'billing' to 'orders'."]
    assert [(s.topic, s.queue) for s in db.subscriptions()] == [("orders", "billing")]
    assert list(app.dataframe[0].value["queue"]) == ["billing"]
    app.text_input(key="sub_topic").set_value("bad topic!")
    click(app, "Subscribe")
    assert "bad topic!" in messages(app, "error")[0]
    click(app, "Unsubscribe")
    assert messages(app, "success") == ["Unsubscribed 'billing' from 'orders'."]
    assert db.subscriptions() == []


def test_admin_schedules_add_list_and_remove(open_console: Console, db: Queue) -> None:
    app = admin_page(open_console("admin_console.py"), "Workflows")
    app.text_input(key="sched_name").set_value("tick")
    app.text_input(key="sched_queue").set_value("metrics")
    app.number_input(key="sched_every").set_value(30.0)
    app.text_area(key="sched_payload").set_value('{"k": 1}')
    click(app, "Save schedule")
    assert messages(app, "success")[0].startswith("Saved schedule 'tick': next run ")
    app.text_input(key="sched_name").set_value("nightly")
    app.radio(key="sched_kind").set_value("cron expression")
    app.text_input(key="sched_cron").set_value("0 3 * * *")
    app.text_input(key="sched_timezone").set_value("Europe/Paris")
    click(app, "Save schedule")
    assert {s.name: (s.every, s.cron) for s in db.list_schedules()} == {
        "tick": (30.0, None), "nightly": (None, "0 3 * * *")}
    table = app.dataframe[-1].value
    assert list(table["when"]) == ["cron 0 3 * * * (Europe/Paris)", "every 30 s"]
    app.text_input(key="sched_cron").set_value("not a cron")
    click(app, "Save schedule")
    assert "cron" in messages(app, "error")[0]
    app.selectbox(key="sched_remove").set_value("tick")
    click(app, "Remove schedule")
    assert messages(app, "success") == ["Removed schedule 'tick' (jobs it enqueued stay)."]
    assert [s.name for s in db.list_schedules()] == ["nightly"]


def test_admin_queue_table_counts_dedup_hits_and_refusals(open_console: Console,
                                                          db: Queue) -> None:
    db.create_queue("small", max_size=1)
    db.enqueue("small", 1, dedup_key="k")
    db.enqueue("small", 1, dedup_key="k")
    try:
        db.enqueue("small", 2)
    except QueueFull:
        pass
    app = admin_page(open_console("admin_console.py"), "Queues")
    row = app.dataframe[0].value.set_index("queue").loc["small"]
    assert (row["dedup"], row["rejected"]) == (1, 1)
    assert db.get_job(db.list_jobs("small")[0].id).state is JobState.READY
