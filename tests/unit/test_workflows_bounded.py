"""Bounded queues: max_size ready-or-leased jobs, then QueueFull or back-pressure."""

from __future__ import annotations

import threading
import time

import pytest

from persistent_queue import InvalidArgument, JobState, Queue, QueueFull


def test_full_queue_raises_and_counts(queue: Queue) -> None:
    queue.create_queue("jobs", max_size=2)
    queue.enqueue("jobs", 1)
    queue.enqueue("jobs", 2, delay=3600)  # delayed jobs hold their place too
    with pytest.raises(QueueFull, match="at most 2"):
        queue.enqueue("jobs", 3)
    assert queue.stats("jobs").rejected_full == 1
    claimed = queue.dequeue("jobs")
    assert claimed is not None
    with pytest.raises(QueueFull):  # leased still counts
        queue.enqueue("jobs", 3)
    queue.ack(claimed)
    assert queue.enqueue("jobs", 3).state is JobState.READY
    assert queue.stats("jobs").rejected_full == 2


def test_waiting_jobs_do_not_count(queue: Queue) -> None:
    queue.create_queue("jobs", max_size=1)
    parent = queue.enqueue("other", 0)
    queue.enqueue("jobs", 1, depends_on=[parent])
    queue.enqueue("jobs", 2, depends_on=[parent])
    assert queue.enqueue("jobs", 3).state is JobState.READY


def test_batch_is_all_or_nothing(queue: Queue) -> None:
    queue.create_queue("jobs", max_size=3)
    queue.enqueue("jobs", 0)
    with pytest.raises(QueueFull):
        queue.enqueue_many("jobs", [1, 2, 3])
    assert len(queue.list_jobs("jobs")) == 1
    assert len(queue.enqueue_many("jobs", [1, 2])) == 2


def test_removing_the_bound(queue: Queue) -> None:
    queue.create_queue("jobs", max_size=1)
    queue.enqueue("jobs", 1)
    queue.update_queue("jobs", max_size=None)
    queue.enqueue("jobs", 2)
    assert queue.stats("jobs").ready == 2


def test_dedup_hit_needs_no_room(queue: Queue) -> None:
    queue.create_queue("jobs", max_size=1)
    first = queue.enqueue("jobs", 1, dedup_key="k")
    assert queue.enqueue("jobs", 1, dedup_key="k").id == first.id


def test_block_times_out_with_queue_full(real_queue: Queue) -> None:
    real_queue.create_queue("jobs", max_size=1)
    real_queue.enqueue("jobs", 1)
    started = time.monotonic()
    with pytest.raises(QueueFull):
        real_queue.enqueue("jobs", 2, block=True, block_timeout=0.3)
    assert time.monotonic() - started >= 0.3
    assert real_queue.stats("jobs").rejected_full == 1


def test_block_waits_for_room(real_queue: Queue) -> None:
    real_queue.create_queue("jobs", max_size=1)
    real_queue.enqueue("jobs", 1)
    result: list[object] = []

    def produce() -> None:
        result.append(real_queue.enqueue("jobs", 2, block=True, block_timeout=60))

    producer = threading.Thread(target=produce)
    producer.start()
    producer.join(0.2)
    assert producer.is_alive(), "the producer must wait while the queue is full"
    claimed = real_queue.dequeue("jobs")
    assert claimed is not None
    real_queue.ack(claimed)
    producer.join(60)
    assert not producer.is_alive()
    assert getattr(result[0], "payload", None) == 2
    assert real_queue.stats("jobs").rejected_full == 0


def test_block_timeout_without_block_is_an_error(queue: Queue) -> None:
    with pytest.raises(InvalidArgument, match="block"):
        queue.enqueue("jobs", 1, block_timeout=1)
