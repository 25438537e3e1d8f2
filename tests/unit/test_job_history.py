"""A job's history, done jobs included: who ran each attempt, when, and for how long, read
from the job and the events its failures wrote (no row is written per claim or ack)."""

from __future__ import annotations

from persistent_queue import Job, JobEvent, Queue
from tests.support import FakeClock


def claim(queue: Queue, worker: str) -> Job:
    job = queue.dequeue("q", worker=worker)
    assert job is not None
    return job


def lines(events: list[JobEvent]) -> list[tuple[str, int | None, str | None, float | None]]:
    return [(e.event, e.attempt, e.worker, e.run_time) for e in events]


def test_a_done_job_shows_its_enqueue_its_claim_and_its_ack(
    queue: Queue, clock: FakeClock
) -> None:
    job = queue.enqueue("q", 1)
    clock.advance(2)
    running = claim(queue, "w-a")
    clock.advance(3)
    queue.ack(running)

    events = queue.history(job.id)

    assert lines(events) == [("enqueued", 0, None, None), ("claimed", 1, "w-a", None),
                             ("acked", 1, "w-a", 3)]
    assert [e.at - job.created_at for e in events] == [0, 2, 5]
    assert queue.get_job(job.id).run_time == 3


def test_a_job_that_failed_twice_then_succeeded_shows_each_attempt(
    queue: Queue, clock: FakeClock
) -> None:
    queue.create_queue("q", max_attempts=5)
    job = queue.enqueue("q", 1)
    for worker, seconds in (("w-a", 1.5), ("w-b", 2.5)):
        running = claim(queue, worker)
        clock.advance(seconds)
        queue.nack(running, f"{worker} failed", delay=10)
        clock.advance(10)
    running = claim(queue, "w-c")
    clock.advance(4)
    queue.ack(running)

    events = queue.history(job.id)

    assert lines(events) == [
        ("enqueued", 0, None, None),
        ("claimed", 1, "w-a", None), ("failed", 1, "w-a", 1.5),
        ("claimed", 2, "w-b", None), ("failed", 2, "w-b", 2.5),
        ("claimed", 3, "w-c", None), ("acked", 3, "w-c", 4),
    ]
    assert [e.detail for e in events if e.event == "failed"] == ["w-a failed", "w-b failed"]
    assert [e.at - job.created_at for e in events] == [0, 0, 1.5, 11.5, 14, 24, 28]
    assert events == sorted(events, key=lambda e: e.at)


def test_an_expired_lease_names_the_worker_that_lost_it(queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("q", visibility_timeout=10)
    job = queue.enqueue("q", 1)
    claim(queue, "crashed")
    clock.advance(12)
    running = claim(queue, "rescuer")
    queue.ack(running)

    assert lines(queue.history(job.id)) == [
        ("enqueued", 0, None, None), ("claimed", 1, "crashed", None),
        ("lease_expired", 1, "crashed", 12), ("claimed", 2, "rescuer", None),
        ("acked", 2, "rescuer", 0)]


def test_a_cancelled_running_job_shows_the_request_inside_its_attempt(
    queue: Queue, clock: FakeClock
) -> None:
    job = queue.enqueue("q", 1)
    running = claim(queue, "w-a")
    clock.advance(1)
    queue.cancel(job.id, reason="stop")
    clock.advance(1)
    queue.confirm_cancel(running)

    assert [(e.event, e.worker, e.run_time, e.detail) for e in queue.history(job.id)] == [
        ("enqueued", None, None, None), ("claimed", "w-a", None, None),
        ("cancel_requested", "w-a", None, "stop"), ("cancelled", "w-a", 2, "stop")]


def test_a_request_at_the_same_instant_as_the_claim_still_follows_it(queue: Queue) -> None:
    job = queue.enqueue("q", 1)
    running = claim(queue, "w-a")
    queue.cancel(job.id)
    queue.ack(running)  # the work finished first: acked

    assert [e.event for e in queue.history(job.id)] == [
        "enqueued", "claimed", "cancel_requested", "acked"]


def test_a_consumer_dead_lettering_its_job_ends_the_attempt_it_ran(
    queue: Queue, clock: FakeClock
) -> None:
    job = queue.enqueue("q", 1)
    running = claim(queue, "w-a")
    clock.advance(2)
    queue.move_to_dead_letter_queue(running, "poison")
    queue.redrive(job.id)

    assert lines(queue.history(job.id)) == [
        ("enqueued", 0, None, None), ("claimed", 1, "w-a", None),
        ("dead_lettered", 1, "w-a", 2), ("redriven", 0, None, None)]


def test_a_leased_job_shows_its_running_attempt(queue: Queue) -> None:
    job = queue.enqueue("q", 1)
    claim(queue, "w-a")
    assert lines(queue.history(job.id)) == [("enqueued", 0, None, None),
                                            ("claimed", 1, "w-a", None)]
    assert queue.get_job(job.id).run_time is None  # still running
