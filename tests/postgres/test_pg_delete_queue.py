"""Deleting a queue on PostgreSQL while a publish or a schedule's tick targets it.

Writers run side by side there, so each side holds its transaction open (``Queue.atomic()``)
while the other starts: the second must wait for the first (seen in ``pg_stat_activity``)
and then act on what it committed, so no job is left in a queue that no longer exists and no
deleted queue comes back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from persistent_queue import NoSubscribers, Queue, QueueNotEmpty
from tests.postgres_support import lock_waits
from tests.support import in_thread, wait_for

START = 1_700_000_000.0
DEADLINE = 60.0  # generous: the machine is shared with other test runs


@pytest.fixture
def queues(pg_url: str) -> Iterator[tuple[Queue, Queue]]:
    """Two handles on one fresh database: two connections, two transactions."""
    with Queue(pg_url, clock=lambda: START, durability="normal") as first, \
            Queue(pg_url, clock=lambda: START, durability="normal") as second:
        yield first, second


def wired(q: Queue) -> None:
    q.create_queue("reports")
    q.subscribe("orders", queue="reports")
    q.schedule("reports", {"kind": "tick"}, every=10, start_at=START, name="ticks")


@pytest.mark.parametrize("writer", ["publish", "tick"])
def test_a_delete_waits_for_an_open_publish_or_tick_and_then_sees_its_job(
    queues: tuple[Queue, Queue], pg_url: str, writer: str
) -> None:
    holder, deleter = queues
    wired(holder)
    with holder.atomic():
        if writer == "publish":
            holder.publish("orders", {"order": 1})
        else:
            assert len(holder.run_due_schedules(START)) == 1
        thread, outcome = in_thread(lambda: deleter.delete_queue("reports"))
        wait_for(lambda: lock_waits(pg_url) > 0 or not thread.is_alive(), timeout=DEADLINE,
                 message="the delete to wait or finish")
        assert thread.is_alive(), f"the delete did not wait for the open {writer}: {outcome}"
    thread.join(DEADLINE)

    assert isinstance(outcome.get("error"), QueueNotEmpty)  # it saw the committed job
    assert [job.queue for job in holder.list_jobs()] == ["reports"]
    assert [s.queue for s in holder.subscriptions()] == ["reports"]  # nothing was deleted
    assert [s.name for s in holder.list_schedules()] == ["ticks"]


def test_a_publish_waits_for_an_open_delete_and_then_finds_no_subscriber(
    queues: tuple[Queue, Queue], pg_url: str
) -> None:
    deleter, publisher = queues
    wired(deleter)
    with deleter.atomic():
        deleter.delete_queue("reports")
        thread, outcome = in_thread(lambda: publisher.publish("orders", {"order": 1}))
        wait_for(lambda: lock_waits(pg_url) > 0 or not thread.is_alive(), timeout=DEADLINE,
                 message="the publish to wait or finish")
        assert thread.is_alive(), f"the publish did not wait for the open delete: {outcome}"
    thread.join(DEADLINE)

    assert isinstance(outcome.get("error"), NoSubscribers)
    assert deleter.list_jobs() == [] and deleter.list_queues() == []
