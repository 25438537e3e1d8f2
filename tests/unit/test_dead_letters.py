"""The dead-letter table: what it records, and how jobs leave it (redrive or purge)."""

from __future__ import annotations

import pytest

from persistent_queue import (
    DeadLetter,
    InvalidJobState,
    Job,
    JobNotFound,
    JobState,
    LeaseLost,
    Queue,
)
from tests.support import FakeClock


def claim(queue: Queue, name: str = "q") -> Job:
    job = queue.dequeue(name)
    assert job is not None
    return job


def kill(queue: Queue, name: str = "q", payload: object = 1, error: str = "boom") -> Job:
    """Enqueue a job and fail it once on a queue with max_attempts=1."""
    queue.create_queue(name, max_attempts=1, exist_ok=True)
    job = queue.enqueue(name, payload, headers={"origin": "test"}, priority=4)
    assert isinstance(queue.nack(claim(queue, name), error), DeadLetter)
    return job


def test_the_dead_letter_records_reason_error_and_time(queue: Queue, clock: FakeClock) -> None:
    created = clock.now
    job = kill(queue, payload={"order": 17}, error="KeyError: 'sku'")

    [dead] = queue.dead_letters()

    assert dead.id == job.id
    assert dead.queue == "q"
    assert dead.payload == {"order": 17}
    assert dead.headers == {"origin": "test"}
    assert dead.priority == 4
    assert dead.attempts == 1
    assert dead.reason == "failed 1 of 1 attempts"
    assert dead.last_error == "KeyError: 'sku'"
    assert dead.created_at == created
    assert dead.dead_at == clock.now


def test_dead_letters_are_listed_newest_first_per_queue(queue: Queue) -> None:
    a = kill(queue, "a")
    b1 = kill(queue, "b")
    b2 = kill(queue, "b")
    assert [d.id for d in queue.dead_letters()] == [b2.id, b1.id, a.id]
    assert [d.id for d in queue.dead_letters("b")] == [b2.id, b1.id]
    assert [d.id for d in queue.dead_letters("b", limit=1, offset=1)] == [b1.id]
    assert queue.dead_letters("nothing-here") == []


def test_dead_jobs_are_listed_by_state(queue: Queue) -> None:
    job = kill(queue)
    assert [j.id for j in queue.list_jobs("q", state="dead")] == [job.id]
    assert queue.list_jobs("q", state="ready") == []


def test_move_to_dead_letter_queue_with_the_lease(queue: Queue, clock: FakeClock) -> None:
    job = queue.enqueue("q", {"poison": True})
    leased = claim(queue)

    dead = queue.move_to_dead_letter_queue(leased, "poison message", error="cannot parse")

    assert dead.id == job.id
    assert dead.reason == "poison message" and dead.last_error == "cannot parse"
    assert dead.attempts == 1 and dead.dead_at == clock.now
    assert queue.get_job(job.id).state is JobState.DEAD
    with pytest.raises(LeaseLost):
        queue.ack(leased)


def test_move_to_dead_letter_queue_with_a_stale_lease_is_refused(
    queue: Queue, clock: FakeClock
) -> None:
    queue.enqueue("q", 1)
    stale = claim(queue)
    clock.advance(31)
    claim(queue)
    with pytest.raises(LeaseLost):
        queue.move_to_dead_letter_queue(stale)
    assert queue.dead_letters() == []


def test_move_a_ready_job_to_the_dead_letter_queue_by_id(queue: Queue) -> None:
    job = queue.enqueue("q", 1)

    dead = queue.move_to_dead_letter_queue(job.id, "operator decision")

    assert dead.id == job.id and dead.reason == "operator decision" and dead.attempts == 0
    assert queue.dequeue("q") is None
    assert queue.get_job(job.id).state is JobState.DEAD


def test_a_job_leased_by_someone_cannot_be_dead_lettered_by_id(queue: Queue) -> None:
    job = queue.enqueue("q", 1)
    claim(queue)
    with pytest.raises(LeaseLost):
        queue.move_to_dead_letter_queue(job.id)
    assert queue.get_job(job.id).state is JobState.LEASED


def test_a_job_whose_lease_expired_can_be_dead_lettered_by_id(
    queue: Queue, clock: FakeClock
) -> None:
    job = queue.enqueue("q", 1)
    claim(queue)
    clock.advance(30)
    assert queue.move_to_dead_letter_queue(job.id).id == job.id


def test_done_and_dead_jobs_cannot_be_dead_lettered(queue: Queue) -> None:
    done = queue.enqueue("q", 1)
    queue.ack(claim(queue))
    dead = kill(queue, "dead")
    with pytest.raises(InvalidJobState):
        queue.move_to_dead_letter_queue(done.id)
    with pytest.raises(InvalidJobState):
        queue.move_to_dead_letter_queue(dead.id)
    with pytest.raises(JobNotFound):
        queue.move_to_dead_letter_queue(424242)


def test_redrive_one_resets_attempts_and_keeps_the_id(queue: Queue, clock: FakeClock) -> None:
    job = kill(queue, payload={"n": 1}, error="flaky")
    clock.advance(100)

    assert queue.redrive(job.id) == [job.id]

    back = queue.get_job(job.id)
    assert back.state is JobState.READY
    assert back.attempts == 0
    assert back.payload == {"n": 1} and back.headers == {"origin": "test"}
    assert back.priority == 4 and back.created_at == job.created_at
    assert back.available_at == clock.now
    assert back.last_error == "flaky"
    assert queue.dead_letters() == []
    again = claim(queue)
    assert again.id == job.id and again.attempts == 1
    queue.ack(again)
    assert queue.get_job(job.id).state is JobState.DONE


def test_redrive_all_of_a_queue(queue: Queue) -> None:
    a1, a2 = kill(queue, "a"), kill(queue, "a")
    b = kill(queue, "b")

    assert queue.redrive("a") == [a1.id, a2.id]

    assert [d.id for d in queue.dead_letters()] == [b.id]
    assert sorted(j.id for j in queue.dequeue_many("a", 10)) == [a1.id, a2.id]
    assert queue.redrive("a") == []


def test_deleting_a_queue_drops_its_dead_letters(queue: Queue) -> None:
    gone = kill(queue, "gone")
    kept = kill(queue, "kept")
    queue.delete_queue("gone")
    assert [d.id for d in queue.dead_letters()] == [kept.id]
    with pytest.raises(JobNotFound):
        queue.redrive(gone.id)


def test_redrive_of_a_live_or_unknown_job_is_refused(queue: Queue) -> None:
    live = queue.enqueue("q", 1)
    with pytest.raises(InvalidJobState):
        queue.redrive(live.id)
    with pytest.raises(JobNotFound):
        queue.redrive(999)
    assert queue.get_job(live.id).state is JobState.READY


def test_new_jobs_never_reuse_a_dead_letter_id(queue: Queue) -> None:
    dead = kill(queue)
    fresh = queue.enqueue("q", 2)
    assert fresh.id > dead.id
    queue.redrive(dead.id)
    assert queue.get_job(dead.id).payload == 1
    assert queue.get_job(fresh.id).payload == 2


def test_purge_dead_letters(queue: Queue, clock: FakeClock) -> None:
    old = kill(queue, "a")
    clock.advance(3600)
    recent = kill(queue, "a")
    other = kill(queue, "b")

    assert queue.purge_dead_letters("a", older_than=1800) == 1
    assert {d.id for d in queue.dead_letters()} == {recent.id, other.id}
    with pytest.raises(JobNotFound):
        queue.get_job(old.id)

    assert queue.purge_dead_letters("a") == 1
    assert [d.id for d in queue.dead_letters()] == [other.id]
    assert queue.purge_dead_letters() == 1
    assert queue.dead_letters() == []


def test_history_records_failures_expiries_dead_lettering_and_redrive(
    queue: Queue, clock: FakeClock
) -> None:
    queue.create_queue("q", max_attempts=3)
    job = queue.enqueue("q", 1)
    start = clock.now
    queue.nack(claim(queue), "first failure", delay=0)
    claim(queue)
    clock.advance(30)
    queue.nack(claim(queue), "third failure")
    clock.advance(5)
    queue.redrive(job.id)
    clock.advance(5)
    queue.ack(claim(queue))

    events = queue.history(job.id)

    # Claims and the ack write no row: they are read from the job and the events' run times.
    assert [(e.event, e.attempt) for e in events] == [
        ("enqueued", 0),
        ("claimed", 1), ("failed", 1),
        ("claimed", 2), ("lease_expired", 2),
        ("claimed", 3), ("failed", 3),
        ("dead_lettered", 3),
        ("redriven", 0),
        ("claimed", 1), ("acked", 1),
    ]
    stored = [e for e in events if e.event not in ("enqueued", "claimed", "acked")]
    assert stored[0].detail == "first failure" and stored[0].at == start
    assert stored[2].detail == "third failure"
    assert stored[3].detail == "failed 3 of 3 attempts"
    assert stored[4].at == start + 35
    assert [e.at - start for e in events if e.event == "claimed"] == [0, 0, 30, 40]
    assert all(e.job_id == job.id and e.queue == "q" for e in events)
    assert queue.history(424242) == []
