"""Deleting a queue takes the schedules that target it and its subscriptions with it.

Left behind, either would bring the queue back: a schedule's tick and a publish both enqueue,
and an enqueue creates a missing queue.
"""

from __future__ import annotations

import pytest

from persistent_queue import DeletedQueue, NoSubscribers, Queue, QueueNotEmpty
from persistent_queue.scheduler import run_due
from tests.support import FakeClock


def wire(queue: Queue) -> None:
    """Queue "reports" with a schedule and two subscriptions; "billing" with its own."""
    queue.create_queue("reports")
    queue.create_queue("billing")
    queue.schedule("reports", {"kind": "hourly"}, every=3600, name="hourly")
    queue.schedule("reports", {"kind": "daily"}, every=86400, name="daily")
    queue.schedule("billing", {"kind": "invoice"}, every=3600, name="invoices")
    queue.subscribe("orders", queue="reports")
    queue.subscribe("audit", queue="reports")
    queue.subscribe("orders", queue="billing")


def test_delete_removes_the_queues_schedules_and_subscriptions_only(queue: Queue) -> None:
    wire(queue)

    deleted = queue.delete_queue("reports")

    assert deleted == DeletedQueue(name="reports", schedules=("daily", "hourly"),
                                   topics=("audit", "orders"))
    assert [s.name for s in queue.list_schedules()] == ["invoices"]
    assert queue.get_schedule("invoices").queue == "billing"
    assert [(s.topic, s.queue) for s in queue.subscriptions()] == [("orders", "billing")]
    assert [q.name for q in queue.list_queues()] == ["billing"]


def test_the_schedulers_next_tick_does_not_recreate_the_queue(
    queue: Queue, clock: FakeClock
) -> None:
    wire(queue)
    clock.advance(3600)
    fired = run_due(queue)
    assert sorted(job.queue for job in fired) == ["billing", "reports"]
    queue.delete_queue("reports", force=True)  # takes the fired job with it

    clock.advance(86400)
    fired = run_due(queue)

    assert [(job.queue, job.headers["schedule"]) for job in fired] == [("billing", "invoices")]
    assert [q.name for q in queue.list_queues()] == ["billing"]
    assert queue.list_jobs(queue="reports") == []


def test_publishing_afterwards_skips_the_deleted_queue(queue: Queue) -> None:
    wire(queue)
    queue.delete_queue("reports")

    assert [job.queue for job in queue.publish("orders", {"order": 1})] == ["billing"]
    with pytest.raises(NoSubscribers, match="audit"):  # its only subscriber was deleted
        queue.publish("audit", {"event": 1})
    assert [q.name for q in queue.list_queues()] == ["billing"]
    assert queue.list_jobs(queue="reports") == []


def test_a_refused_delete_removes_nothing(queue: Queue) -> None:
    wire(queue)
    job = queue.enqueue("reports", {"pending": True})
    schedules_before = queue.list_schedules()
    subscriptions_before = queue.subscriptions()

    with pytest.raises(QueueNotEmpty):
        queue.delete_queue("reports")

    assert queue.list_schedules() == schedules_before
    assert queue.subscriptions() == subscriptions_before
    assert queue.get_job(job.id).queue == "reports"
    assert [q.name for q in queue.list_queues()] == ["billing", "reports"]


def test_a_queue_without_workflows_reports_nothing_else(queue: Queue) -> None:
    queue.create_queue("plain")
    deleted = queue.delete_queue("plain")
    assert deleted == DeletedQueue(name="plain") and deleted.summary() == ""


def test_the_summary_names_what_went_with_the_queue() -> None:
    one = DeletedQueue(name="reports", schedules=("nightly",), topics=("orders",))
    assert one.summary() == "with its schedule 'nightly' and its subscription to topic 'orders'"
    many = DeletedQueue(name="reports", schedules=("a", "b"), topics=())
    assert many.summary() == "with its schedules 'a', 'b'"
    assert DeletedQueue(name="r", topics=("x", "y")).summary() == (
        "with its subscriptions to topics 'x', 'y'")
    assert one.to_dict() == {"name": "reports", "schedules": ["nightly"], "topics": ["orders"]}
