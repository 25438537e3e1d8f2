"""Topics: publish puts one copy into every subscribed queue, atomically."""

from __future__ import annotations

import pytest

from persistent_queue import (
    InvalidQueueName,
    JobState,
    NoSubscribers,
    Queue,
    QueueFull,
)


def test_publish_fans_out_one_copy_per_subscriber(queue: Queue) -> None:
    assert queue.subscribe("orders", queue="billing") is True
    assert queue.subscribe("orders", queue="shipping") is True
    assert queue.subscribe("orders", queue="billing") is False  # idempotent
    jobs = queue.publish("orders", {"order": 42}, headers={"tenant": "acme"})
    assert [job.queue for job in jobs] == ["billing", "shipping"]
    assert len({job.id for job in jobs}) == 2
    for job in jobs:
        assert job.payload == {"order": 42} and job.headers == {"tenant": "acme"}
    billing = queue.dequeue("billing")
    assert billing is not None
    queue.ack(billing)
    # Each copy is acked on its own.
    assert queue.get_job(jobs[1].id).state is JobState.READY
    assert queue.list_jobs(headers={"tenant": "acme"}, state="ready")[0].queue == "shipping"


def test_publish_without_subscribers_is_reported_and_stores_nothing(queue: Queue) -> None:
    with pytest.raises(NoSubscribers, match="orders"):
        queue.publish("orders", 1)
    assert queue.list_jobs() == []


def test_unsubscribe_stops_delivery(queue: Queue) -> None:
    queue.subscribe("orders", queue="billing")
    queue.subscribe("orders", queue="audit")
    assert queue.unsubscribe("orders", queue="audit") is True
    assert queue.unsubscribe("orders", queue="audit") is False
    assert [(s.topic, s.queue) for s in queue.subscriptions()] == [("orders", "billing")]
    assert [job.queue for job in queue.publish("orders", 1)] == ["billing"]
    queue.unsubscribe("orders", queue="billing")
    with pytest.raises(NoSubscribers):
        queue.publish("orders", 2)


def test_publish_is_all_or_nothing_when_one_subscriber_is_full(queue: Queue) -> None:
    queue.create_queue("small", max_size=1)
    queue.subscribe("orders", queue="big")
    queue.subscribe("orders", queue="small")
    queue.publish("orders", 1)
    with pytest.raises(QueueFull):
        queue.publish("orders", 2)
    assert queue.stats("big").ready == 1
    assert queue.stats("small").ready == 1
    assert queue.stats("small").rejected_full == 1


def test_subscriptions_filter_by_topic(queue: Queue) -> None:
    queue.subscribe("a", queue="q1")
    queue.subscribe("b", queue="q2")
    assert [s.queue for s in queue.subscriptions("b")] == ["q2"]


@pytest.mark.parametrize("topic", ["", "has space", "-leading", "x" * 200])
def test_invalid_topic_names_are_rejected(queue: Queue, topic: str) -> None:
    with pytest.raises(InvalidQueueName, match="topic"):
        queue.subscribe(topic, queue="q")
    with pytest.raises(InvalidQueueName):
        queue.publish(topic, 1)


def test_publish_with_a_dedup_key_is_idempotent_per_queue(queue: Queue) -> None:
    queue.subscribe("orders", queue="billing")
    queue.subscribe("orders", queue="shipping")
    first = queue.publish("orders", 1, dedup_key="order-7")
    again = queue.publish("orders", 1, dedup_key="order-7")
    assert [j.id for j in again] == [j.id for j in first]
    assert all(j.deduplicated for j in again) and not any(j.deduplicated for j in first)
    assert queue.stats("billing").dedup_hits == queue.stats("shipping").dedup_hits == 1
