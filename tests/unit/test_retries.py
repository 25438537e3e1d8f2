"""Retries: backoff after a failure, and the dead-letter table when attempts run out."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from persistent_queue import DeadLetter, Job, JobState, Queue, RetryPolicy
from tests.support import FakeClock


def claim(queue: Queue, name: str = "q") -> Job:
    job = queue.dequeue(name)
    assert job is not None
    return job


# -- the policy --------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, 2, 3, 5, 8, 9, 10, 20, 64, 65, 1000])
def test_backoff_is_50_to_100_percent_of_the_capped_exponential(attempt: int) -> None:
    policy = RetryPolicy(base=1.0, cap=300.0, rng=random.Random(attempt))
    ceiling = min(300.0, 1.0 * 2.0 ** (attempt - 1))
    delays = [policy.delay(attempt) for _ in range(2000)]
    assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
    # the jitter really spreads: both halves of the range are used
    assert min(delays) < ceiling * 0.6 and max(delays) > ceiling * 0.9


def test_backoff_grows_until_the_cap() -> None:
    policy = RetryPolicy(base=2.0, cap=60.0, rng=random.Random(1))
    lower_bounds = [min(60.0, 2.0 * 2 ** (n - 1)) * 0.5 for n in range(1, 10)]
    assert lower_bounds == [1, 2, 4, 8, 16, 30, 30, 30, 30]
    for n, floor in enumerate(lower_bounds, start=1):
        assert floor <= policy.delay(n) <= floor * 2


def test_backoff_with_a_zeroth_attempt_uses_the_base() -> None:
    policy = RetryPolicy(base=4.0, cap=100.0)
    assert 2.0 <= policy.delay(0) <= 4.0


# -- nack --------------------------------------------------------------------------------------


def test_nack_without_delay_uses_the_backoff(db_path: Path, clock: FakeClock) -> None:
    policy = RetryPolicy(base=10.0, cap=1000.0, rng=random.Random(7))
    expected = RetryPolicy(base=10.0, cap=1000.0, rng=random.Random(7))
    with Queue(db_path, clock=clock, retry_policy=policy) as q:
        q.enqueue("q", 1)
        for attempt in (1, 2, 3):
            job = claim(q)
            assert job.attempts == attempt
            back = q.nack(job, f"failure {attempt}")
            assert isinstance(back, Job)
            wait = expected.delay(attempt)
            assert back.available_at == pytest.approx(clock.now + wait)
            assert 10.0 * 2 ** (attempt - 1) * 0.5 <= wait <= 10.0 * 2 ** (attempt - 1)
            assert back.state is JobState.READY
            assert back.last_error == f"failure {attempt}"
            clock.advance(wait - 0.01)
            assert q.dequeue("q") is None
            clock.advance(0.01)


def test_nack_with_delay(queue: Queue, clock: FakeClock) -> None:
    queue.enqueue("q", 1)
    job = claim(queue)

    back = queue.nack(job, "try later", delay=42)

    assert isinstance(back, Job)
    assert back.available_at == clock.now + 42 and back.attempts == 1
    assert queue.stats("q").scheduled == 1
    clock.advance(41.9)
    assert queue.dequeue("q") is None
    clock.advance(0.1)
    again = claim(queue)
    assert again.attempts == 2 and again.last_error == "try later"


def test_nack_with_zero_delay_is_claimable_at_once(queue: Queue) -> None:
    queue.enqueue("q", 1)
    queue.nack(claim(queue), delay=0)
    assert claim(queue).attempts == 2


def test_nack_on_the_last_attempt_dead_letters_with_the_error(
    queue: Queue, clock: FakeClock
) -> None:
    queue.create_queue("q", max_attempts=2)
    job = queue.enqueue("q", {"id": 7})
    queue.nack(claim(queue), "first", delay=0)
    last = claim(queue)
    clock.advance(3)

    result = queue.nack(last, "ValueError: bad input", delay=0)

    assert isinstance(result, DeadLetter)
    assert result.id == job.id and result.payload == {"id": 7}
    assert result.attempts == 2
    assert result.last_error == "ValueError: bad input"
    assert result.reason == "failed 2 of 2 attempts"
    assert result.dead_at == clock.now
    assert queue.get_job(job.id).state is JobState.DEAD
    assert queue.dequeue("q") is None
    assert queue.list_jobs("q") == []


def test_a_job_level_max_attempts_overrides_the_queue(queue: Queue) -> None:
    queue.create_queue("q", max_attempts=10)
    queue.enqueue("q", 1, max_attempts=1)
    assert isinstance(queue.nack(claim(queue), "once"), DeadLetter)


def test_max_attempts_one_dead_letters_on_the_first_failure(queue: Queue) -> None:
    queue.create_queue("q", max_attempts=1)
    queue.enqueue("q", 1)
    assert isinstance(queue.nack(claim(queue)), DeadLetter)


def test_error_text_is_truncated_and_cleaned(queue: Queue) -> None:
    queue.enqueue("q", 1)
    back = queue.nack(claim(queue), "x\x00y" + "z" * 20_000, delay=0)
    assert back.last_error is not None
    assert len(back.last_error) == 16 * 1024
    assert "\x00" not in back.last_error and back.last_error.endswith("...")


# -- lease expiry on the last attempt ----------------------------------------------------------


def test_lease_expiry_on_the_last_attempt_dead_letters_via_reap(
    queue: Queue, clock: FakeClock
) -> None:
    queue.create_queue("q", max_attempts=2)
    job = queue.enqueue("q", 1)
    claim(queue)
    clock.advance(30)
    claim(queue)  # the second and last attempt
    clock.advance(30)

    assert queue.dequeue("q") is None  # never claimed a third time
    queue.reap()

    [dead] = queue.dead_letters("q")
    assert dead.id == job.id
    assert dead.reason == "lease expired"
    assert dead.attempts == 2
    assert dead.last_error is not None and "lease expired on attempt 2" in dead.last_error
    assert queue.get_job(job.id).state is JobState.DEAD
    assert [e.event for e in queue.history(job.id)] == [
        "enqueued", "claimed", "lease_expired", "claimed", "lease_expired", "dead_lettered"]
    clock.advance(3600)
    assert queue.dequeue("q") is None


def test_lease_expiry_on_the_last_attempt_dead_letters_on_the_next_dequeue(
    queue: Queue, clock: FakeClock
) -> None:
    queue.create_queue("q", max_attempts=1)
    job = queue.enqueue("q", 1)
    claim(queue)
    clock.advance(30)

    assert queue.dequeue("q") is None

    assert queue.get_job(job.id).state is JobState.DEAD
    assert [d.id for d in queue.dead_letters("q")] == [job.id]


def test_an_exhausted_expired_lease_is_never_claimed_even_before_it_is_reaped(
    queue: Queue, clock: FakeClock
) -> None:
    queue.create_queue("q", max_attempts=1)
    job = queue.enqueue("q", 1)
    claim(queue)
    clock.advance(30)
    for _ in range(3):
        assert queue.dequeue("q") is None
        assert queue.get_job(job.id).state in (JobState.LEASED, JobState.DEAD)


def test_stats_dead_letter_exhausted_leases(queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("q", max_attempts=1)
    queue.enqueue("q", 1)
    claim(queue)
    clock.advance(30)
    stats = queue.stats("q")
    assert (stats.dead, stats.leased, stats.expired) == (1, 0, 0)


def test_failures_alternate_with_expiries_and_all_count(queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("q", max_attempts=3)
    job = queue.enqueue("q", 1)
    queue.nack(claim(queue), "crash 1", delay=0)
    claim(queue)
    clock.advance(30)  # attempt 2 expires
    result = queue.nack(claim(queue), "crash 3")
    assert isinstance(result, DeadLetter)
    assert result.attempts == 3
    assert [(e.event, e.attempt) for e in queue.history(job.id)] == [
        ("enqueued", 0), ("claimed", 1), ("failed", 1), ("claimed", 2), ("lease_expired", 2),
        ("claimed", 3), ("failed", 3), ("dead_lettered", 3)]
    assert queue.stats("q").retries == 3
