"""Leases: only the current holder of a lease may finish, fail, extend or return a job.

Every operation on a lease that is not the caller's raises ``LeaseLost`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from persistent_queue import InvalidArgument, Job, JobNotFound, JobState, LeaseLost, Queue
from tests.support import FakeClock

Operation = Callable[[Queue, int, str], Any]

OPERATIONS: dict[str, Operation] = {
    "ack": lambda q, job_id, token: q.ack(job_id, token),
    "nack": lambda q, job_id, token: q.nack(job_id, "boom", lease_token=token),
    "nack-with-delay": lambda q, job_id, token: q.nack(job_id, delay=5, lease_token=token),
    "extend": lambda q, job_id, token: q.extend(job_id, 60, lease_token=token),
    "requeue": lambda q, job_id, token: q.requeue(job_id, lease_token=token),
    "dead-letter": lambda q, job_id, token: q.move_to_dead_letter_queue(
        job_id, lease_token=token),
}


def claim(queue: Queue, name: str = "q") -> Job:
    job = queue.dequeue(name)
    assert job is not None
    assert job.lease_token is not None
    return job


def assert_refused(queue: Queue, operation: Operation, job_id: int, token: str) -> None:
    """The operation raises LeaseLost and leaves the job exactly as it was."""
    before = queue.get_job(job_id)
    history = queue.history(job_id)
    with pytest.raises(LeaseLost):
        operation(queue, job_id, token)
    assert queue.get_job(job_id) == before
    assert queue.history(job_id) == history
    assert queue.dead_letters() == []


# -- the current holder ------------------------------------------------------------------------


def test_ack_with_the_current_token_finishes_the_job(queue: Queue, clock: FakeClock) -> None:
    queue.enqueue("q", 1)
    job = claim(queue)
    clock.advance(29.9)
    queue.ack(job)
    done = queue.get_job(job.id)
    assert done.state is JobState.DONE
    assert done.finished_at == clock.now
    assert done.lease_expires_at is None


def test_ack_by_id_and_token(queue: Queue) -> None:
    queue.enqueue("q", 1)
    job = claim(queue)
    assert job.lease_token is not None
    queue.ack(job.id, job.lease_token)
    assert queue.get_job(job.id).state is JobState.DONE


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_every_operation_succeeds_with_the_current_token(queue: Queue, name: str) -> None:
    queue.enqueue("q", 1)
    job = claim(queue)
    assert job.lease_token is not None
    OPERATIONS[name](queue, job.id, job.lease_token)
    assert queue.get_job(job.id).state is not JobState.LEASED or name == "extend"


# -- everyone else -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_a_wrong_token_is_refused_and_changes_nothing(queue: Queue, name: str) -> None:
    queue.enqueue("q", 1)
    job = claim(queue)
    assert_refused(queue, OPERATIONS[name], job.id, "0" * 32)
    assert queue.get_job(job.id).state is JobState.LEASED


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_an_expired_lease_is_refused_and_changes_nothing(
    queue: Queue, clock: FakeClock, name: str
) -> None:
    queue.enqueue("q", 1)
    job = claim(queue)
    assert job.lease_token is not None
    clock.advance(30)  # the lease ends exactly now
    assert_refused(queue, OPERATIONS[name], job.id, job.lease_token)


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_a_finished_job_is_refused_and_changes_nothing(queue: Queue, name: str) -> None:
    queue.enqueue("q", 1)
    job = claim(queue)
    assert job.lease_token is not None
    queue.ack(job)
    assert_refused(queue, OPERATIONS[name], job.id, job.lease_token)
    assert queue.get_job(job.id).state is JobState.DONE


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_a_requeued_job_is_refused_to_its_old_holder(queue: Queue, name: str) -> None:
    queue.enqueue("q", 1)
    job = claim(queue)
    assert job.lease_token is not None
    queue.requeue(job)
    assert_refused(queue, OPERATIONS[name], job.id, job.lease_token)
    assert queue.get_job(job.id).state is JobState.READY


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_a_stale_holder_cannot_touch_the_new_lease(
    queue: Queue, clock: FakeClock, name: str
) -> None:
    queue.enqueue("q", 1)
    a = claim(queue)
    assert a.lease_token is not None
    clock.advance(31)
    b = claim(queue)
    assert b.id == a.id and b.lease_token != a.lease_token
    assert_refused(queue, OPERATIONS[name], a.id, a.lease_token)
    queue.ack(b)  # B's lease is untouched
    assert queue.get_job(b.id).state is JobState.DONE


def test_double_ack_is_lease_lost(queue: Queue) -> None:
    queue.enqueue("q", 1)
    job = claim(queue)
    queue.ack(job)
    with pytest.raises(LeaseLost):
        queue.ack(job)
    assert queue.get_job(job.id).state is JobState.DONE


def test_stale_lease_a_expires_b_claims_and_acks_a_ack_is_lease_lost(
    queue: Queue, clock: FakeClock
) -> None:
    job = queue.enqueue("q", {"charge": 100})
    a = claim(queue)
    clock.advance(31)  # A hangs past its visibility timeout
    b = claim(queue)
    queue.ack(b)
    finished = queue.get_job(job.id)

    with pytest.raises(LeaseLost, match="done"):
        queue.ack(a)
    with pytest.raises(LeaseLost):
        queue.nack(a, "A failed late")

    assert queue.get_job(job.id) == finished
    assert finished.state is JobState.DONE and finished.attempts == 2


def test_a_job_that_was_never_claimed_is_refused(queue: Queue) -> None:
    job = queue.enqueue("q", 1)
    assert_refused(queue, OPERATIONS["ack"], job.id, "f" * 32)
    assert queue.get_job(job.id).state is JobState.READY


def test_a_job_object_without_a_token_is_an_argument_error(queue: Queue) -> None:
    job = queue.enqueue("q", 1)
    with pytest.raises(InvalidArgument, match="lease token"):
        queue.ack(job)
    with pytest.raises(InvalidArgument):
        queue.ack(job.id)


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_an_unknown_id_is_job_not_found(queue: Queue, name: str) -> None:
    with pytest.raises(JobNotFound):
        OPERATIONS[name](queue, 999_999, "0" * 32)


def test_extend_with_default_length_on_an_unknown_id_is_job_not_found(queue: Queue) -> None:
    with pytest.raises(JobNotFound):
        queue.extend(12345, lease_token="0" * 32)


# -- expiry ------------------------------------------------------------------------------------


def test_an_expired_lease_makes_the_job_claimable_again_with_the_attempt_counted(
    queue: Queue, clock: FakeClock
) -> None:
    queue.enqueue("q", 1)
    first = claim(queue)
    clock.advance(29.999)
    assert queue.dequeue("q") is None
    clock.advance(0.001)

    second = claim(queue)

    assert second.id == first.id
    assert second.attempts == 2
    assert second.last_error == "lease expired before ack"
    events = queue.history(first.id)
    assert [(e.event, e.attempt) for e in events] == [
        ("enqueued", 0), ("claimed", 1), ("lease_expired", 1), ("claimed", 2)]


def test_stats_show_an_expired_lease(queue: Queue, clock: FakeClock) -> None:
    queue.enqueue("q", 1)
    claim(queue)
    assert queue.stats("q").expired == 0
    clock.advance(30)
    assert queue.stats("q").expired == 1


# -- extend ------------------------------------------------------------------------------------


def test_extend_pushes_the_expiry(queue: Queue, clock: FakeClock) -> None:
    queue.enqueue("q", 1)
    job = claim(queue)
    clock.advance(20)

    extended = queue.extend(job, 50)

    assert extended.lease_expires_at == clock.now + 50
    assert extended.lease_token == job.lease_token
    assert extended.attempts == 1
    clock.advance(45)  # past the original expiry, within the extension
    assert queue.dequeue("q") is None
    queue.ack(job)
    assert queue.get_job(job.id).state is JobState.DONE


def test_extend_without_length_uses_the_queue_timeout(queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("q", visibility_timeout=120)
    queue.enqueue("q", 1)
    job = queue.dequeue("q", visibility_timeout=5)
    assert job is not None
    assert queue.extend(job).lease_expires_at == clock.now + 120
    assert job.lease_token is not None
    assert queue.extend(job.id, lease_token=job.lease_token).lease_expires_at == clock.now + 120


def test_extend_may_shorten_the_lease(queue: Queue, clock: FakeClock) -> None:
    queue.enqueue("q", 1)
    job = claim(queue)
    queue.extend(job, 1)
    clock.advance(1)
    again = claim(queue)
    assert again.id == job.id


# -- requeue -----------------------------------------------------------------------------------


def test_requeue_returns_the_job_without_counting_the_attempt(
    queue: Queue, clock: FakeClock
) -> None:
    queue.enqueue("q", 1)
    job = claim(queue)

    back = queue.requeue(job)

    assert back.state is JobState.READY and back.attempts == 0
    assert back.available_at == clock.now
    again = claim(queue)
    assert again.id == job.id and again.attempts == 1
    # Nothing stored: the claim given back leaves no trace, the running one is read from the job.
    assert [(e.event, e.attempt) for e in queue.history(job.id)] == [
        ("enqueued", 0), ("claimed", 1)]


def test_requeue_with_delay(queue: Queue, clock: FakeClock) -> None:
    queue.enqueue("q", 1)
    job = claim(queue)
    assert queue.requeue(job, delay=10).available_at == clock.now + 10
    clock.advance(9)
    assert queue.dequeue("q") is None
    clock.advance(1)
    assert claim(queue).id == job.id


def test_requeue_on_the_last_attempt_keeps_the_job_alive(queue: Queue) -> None:
    queue.create_queue("q", max_attempts=1)
    queue.enqueue("q", 1)
    job = claim(queue)
    queue.requeue(job)
    again = claim(queue)
    assert again.attempts == 1
