"""Idempotent enqueue: a dedup key returns the existing job while it is unfinished."""

from __future__ import annotations

import pytest

from persistent_queue import InvalidArgument, JobState, Queue
from tests.support import FakeClock


def test_second_enqueue_with_the_key_returns_the_first_job(queue: Queue) -> None:
    first = queue.enqueue("orders", {"n": 1}, dedup_key="order-42")
    second = queue.enqueue("orders", {"n": 2}, dedup_key="order-42")
    assert first.deduplicated is False and first.dedup_key == "order-42"
    assert second.deduplicated is True and second.id == first.id
    assert second.payload == {"n": 1}  # the stored job, not the new payload
    assert len(queue.list_jobs("orders")) == 1
    assert queue.stats("orders").dedup_hits == 1


def test_key_still_holds_while_leased(queue: Queue) -> None:
    first = queue.enqueue("orders", 1, dedup_key="k")
    assert queue.dequeue("orders") is not None
    again = queue.enqueue("orders", 1, dedup_key="k")
    assert again.deduplicated and again.id == first.id and again.state is JobState.LEASED


def test_after_done_a_new_job_is_created_by_default(queue: Queue) -> None:
    first = queue.enqueue("orders", 1, dedup_key="k")
    claimed = queue.dequeue("orders")
    assert claimed is not None
    queue.ack(claimed)
    second = queue.enqueue("orders", 1, dedup_key="k")
    assert second.id != first.id and not second.deduplicated


def test_window_after_done_is_configurable(db_path: object, clock: FakeClock) -> None:
    with Queue(db_path, clock=clock, durability="normal", dedup_window=60) as q:  # type: ignore[arg-type]
        first = q.enqueue("orders", 1, dedup_key="k")
        claimed = q.dequeue("orders")
        assert claimed is not None
        q.ack(claimed)
        clock.advance(59)
        again = q.enqueue("orders", 1, dedup_key="k")
        assert again.deduplicated and again.id == first.id and again.state is JobState.DONE
        clock.advance(2)
        assert not q.enqueue("orders", 1, dedup_key="k").deduplicated
        # and per call
        clock.advance(1)
        assert q.enqueue("orders", 1, dedup_key="k", dedup_window=0).deduplicated


def test_keys_are_per_queue(queue: Queue) -> None:
    a = queue.enqueue("q1", 1, dedup_key="k")
    b = queue.enqueue("q2", 1, dedup_key="k")
    assert a.id != b.id and not b.deduplicated


def test_dead_lettered_job_does_not_hold_its_key(queue: Queue) -> None:
    first = queue.enqueue("orders", 1, dedup_key="k")
    queue.move_to_dead_letter_queue(first.id)
    second = queue.enqueue("orders", 1, dedup_key="k")
    assert second.id != first.id and not second.deduplicated
    assert queue.get_job(first.id).state is JobState.DEAD


def test_redriven_job_keeps_its_key(queue: Queue) -> None:
    first = queue.enqueue("orders", 1, dedup_key="k")
    queue.move_to_dead_letter_queue(first.id)
    queue.redrive(first.id)
    again = queue.enqueue("orders", 1, dedup_key="k")
    assert again.deduplicated and again.id == first.id


@pytest.mark.parametrize("bad", ["", "x" * 257, 42, b"k"])
def test_invalid_keys_are_rejected(queue: Queue, bad: object) -> None:
    with pytest.raises(InvalidArgument, match="dedup_key"):
        queue.enqueue("orders", 1, dedup_key=bad)  # type: ignore[arg-type]
