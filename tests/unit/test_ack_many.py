"""Batch ack: every job of the batch is done in one transaction, or none is."""

from __future__ import annotations

import pytest

from persistent_queue import InvalidArgument, JobState, LeaseLost, Queue
from tests.support import FakeClock


def test_ack_many_marks_every_job_done(queue: Queue) -> None:
    queue.enqueue_many("emails", list(range(5)))
    claimed = queue.dequeue_many("emails", 5)
    queue.ack_many(claimed)
    assert {queue.get_job(job.id).state for job in claimed} == {JobState.DONE}
    assert queue.dequeue("emails") is None


def test_one_stale_lease_acks_nothing(queue: Queue, clock: FakeClock) -> None:
    queue.enqueue_many("emails", [1, 2, 3], max_attempts=5)
    first, second, third = queue.dequeue_many("emails", 3, visibility_timeout=10)
    queue.ack(second)  # already done: acking it again must fail the whole batch
    with pytest.raises(LeaseLost, match=f"job {second.id}"):
        queue.ack_many([first, second, third])
    assert queue.get_job(first.id).state is JobState.LEASED
    assert queue.get_job(third.id).state is JobState.LEASED
    clock.advance(11)  # expired leases cannot be acked in a batch either
    with pytest.raises(LeaseLost, match="expired"):
        queue.ack_many([first, third])
    assert queue.get_job(first.id).state is JobState.LEASED


def test_ack_many_rejects_a_job_twice_and_accepts_nothing(queue: Queue) -> None:
    queue.enqueue("emails", 1)
    job = queue.dequeue("emails")
    assert job is not None
    with pytest.raises(InvalidArgument, match="more than once"):
        queue.ack_many([job, job])
    queue.ack_many([])
    assert queue.get_job(job.id).state is JobState.LEASED
