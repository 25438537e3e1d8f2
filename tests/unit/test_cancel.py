"""Cancelling a job: at once when it is not running, by request (confirmed by its worker) when
it is, and what follows (dependents, late settlements, the reaper, counts, cleanup)."""

from __future__ import annotations

import pytest

from persistent_queue import (
    DeadLetter,
    InvalidArgument,
    InvalidJobState,
    Job,
    JobNotFound,
    JobState,
    LeaseLost,
    Queue,
    TaskFailed,
)
from tests.support import FakeClock


def claim(queue: Queue, name: str = "q", worker: str = "w-1") -> Job:
    job = queue.dequeue(name, worker=worker)
    assert job is not None
    return job


def snapshot(queue: Queue, job_id: int) -> tuple[Job, list[str]]:
    return queue.get_job(job_id), [e.event for e in queue.history(job_id)]


# -- a job that is not running is cancelled at once ------------------------------------------


@pytest.mark.parametrize("how", ["ready", "delayed", "backing off", "waiting"])
def test_a_job_that_is_not_running_is_cancelled_at_once_and_never_runs(
    queue: Queue, clock: FakeClock, how: str
) -> None:
    queue.create_queue("q", max_attempts=3)
    parent = queue.enqueue("q", "parent", delay=3600)
    job = {
        "ready": lambda: queue.enqueue("q", 1),
        "delayed": lambda: queue.enqueue("q", 1, delay=60),
        "waiting": lambda: queue.enqueue("q", 1, depends_on=[parent]),
        "backing off": lambda: queue.enqueue("q", 1, priority=9),
    }[how]()
    if how == "backing off":
        queue.nack(claim(queue), "flaky", delay=60)

    cancelled = queue.cancel(job.id, reason="wrong day")

    assert cancelled.state is JobState.CANCELLED
    assert cancelled.finished_at == clock.now
    assert cancelled.cancel_requested and cancelled.cancel_reason == "wrong day"
    assert cancelled.lease_token is None and cancelled.run_time is None
    assert queue.get_job(job.id) == cancelled
    last = queue.history(job.id)[-1]
    assert (last.event, last.detail, last.worker, last.run_time) == (
        "cancelled", "wrong day", None, None)
    clock.advance(7200)
    queue.ack(claim(queue))  # the parent: releases nothing
    assert queue.dequeue("q") is None
    assert queue.get_job(job.id).state is JobState.CANCELLED


def test_finished_dead_and_unknown_jobs_cannot_be_cancelled(queue: Queue) -> None:
    queue.create_queue("q", max_attempts=1)
    done = queue.enqueue("q", 1)
    queue.ack(claim(queue))
    dead = queue.enqueue("q", 2)
    queue.nack(claim(queue), "boom")
    gone = queue.enqueue("q", 3)
    queue.cancel(gone.id)

    with pytest.raises(InvalidJobState, match="is done"):
        queue.cancel(done.id)
    with pytest.raises(InvalidJobState, match="is cancelled"):
        queue.cancel(gone.id)
    with pytest.raises(InvalidJobState, match="dead-lettered: purge it"):
        queue.cancel(dead.id)
    with pytest.raises(JobNotFound):
        queue.cancel(424242)
    for bad in (0, -1, "1", 1.0, True, None):
        with pytest.raises(InvalidArgument):
            queue.cancel(bad)  # type: ignore[arg-type]
    assert queue.get_job(done.id).state is JobState.DONE
    assert [d.id for d in queue.dead_letters()] == [dead.id]


def test_a_long_reason_is_truncated_and_any_text_is_stored_as_text(queue: Queue) -> None:
    job = queue.enqueue("q", 1)
    cancelled = queue.cancel(job.id, reason="x" * 5000 + "\x00")
    assert cancelled.cancel_reason is not None and len(cancelled.cancel_reason) == 1024
    assert cancelled.cancel_reason.endswith("...")


# -- dependents ------------------------------------------------------------------------------


def test_dependents_of_a_cancelled_job_are_dead_lettered_and_redrivable(
    queue: Queue, clock: FakeClock
) -> None:
    parent = queue.enqueue("q", "parent")
    other = queue.enqueue("q", "other")
    child = queue.enqueue("q", "child", depends_on=[parent, other])
    grandchild = queue.enqueue("q", "grandchild", depends_on=[child])

    queue.cancel(parent.id, reason="not needed")

    letters = {d.id: d for d in queue.dead_letters()}
    assert letters[child.id].reason == "dependency cancelled"
    assert letters[grandchild.id].reason == "dependency failed"
    assert queue.get_job(other.id).state is JobState.READY
    # Redriven, the child no longer waits for the cancelled parent: only for the other one.
    assert queue.redrive(child.id) == [child.id]
    assert queue.get_job(child.id).state is JobState.WAITING
    assert queue.get_job(grandchild.id).state is JobState.WAITING
    queue.ack(claim(queue))  # other
    assert claim(queue).id == child.id


def test_a_job_enqueued_after_its_dependency_was_cancelled_is_dead_lettered(
    queue: Queue,
) -> None:
    parent = queue.enqueue("q", "parent")
    queue.cancel(parent.id)

    child = queue.enqueue("q", "child", depends_on=[parent])

    assert child.state is JobState.DEAD
    assert queue.dead_letters()[0].reason == "dependency cancelled"


# -- a running job: requested, then confirmed by its worker ----------------------------------


def test_a_running_job_is_asked_to_stop_and_its_worker_confirms(
    queue: Queue, clock: FakeClock
) -> None:
    job = queue.enqueue("q", 1)
    running = claim(queue, worker="worker-7")
    clock.advance(2)

    requested = queue.cancel(job.id, reason="operator")

    assert requested.state is JobState.LEASED and requested.cancel_requested
    assert requested.cancel_reason == "operator" and requested.finished_at is None
    assert queue.cancel(job.id, reason="again") == requested  # idempotent: nothing changes
    assert queue.cancel_requests([job.id, 999]) == {job.id}
    assert queue.extend(running, 30).cancel_requested
    assert [e.event for e in queue.history(job.id)].count("cancel_requested") == 1
    clock.advance(3)

    cancelled = queue.confirm_cancel(running)

    assert cancelled.state is JobState.CANCELLED and cancelled.run_time == 5
    assert (cancelled.claimed_by, cancelled.cancel_reason) == ("worker-7", "operator")
    last = queue.history(job.id)[-1]
    assert (last.event, last.worker, last.run_time, last.detail) == (
        "cancelled", "worker-7", 5, "operator")
    assert queue.cancel_requests([job.id]) == {job.id}


def test_a_late_ack_or_nack_after_the_confirmed_cancel_is_refused(queue: Queue) -> None:
    job = queue.enqueue("q", 1)
    running = claim(queue)
    queue.cancel(job.id)
    queue.confirm_cancel(running)
    before = snapshot(queue, job.id)

    for late in (lambda: queue.ack(running), lambda: queue.nack(running, "late"),
                 lambda: queue.requeue(running), lambda: queue.extend(running),
                 lambda: queue.set_progress(running, 1.0),
                 lambda: queue.confirm_cancel(running)):
        with pytest.raises(LeaseLost, match="cancelled, not leased"):
            late()
    assert snapshot(queue, job.id) == before
    assert queue.dead_letters() == []


def test_an_ack_that_wins_the_race_acks_and_the_cancel_then_refuses(queue: Queue) -> None:
    job = queue.enqueue("q", 1)
    running = claim(queue)
    queue.cancel(job.id)

    queue.ack(running, result="finished anyway")

    assert queue.get_job(job.id).state is JobState.DONE
    assert queue.result(job.id, timeout=0) == "finished anyway"
    with pytest.raises(InvalidJobState, match="is done"):
        queue.cancel(job.id)


def test_confirm_cancel_needs_a_request_and_the_current_lease(
    queue: Queue, clock: FakeClock
) -> None:
    queue.enqueue("q", 1)
    running = claim(queue)
    with pytest.raises(InvalidJobState, match="no cancellation was requested"):
        queue.confirm_cancel(running)
    queue.cancel(running.id)
    clock.advance(31)  # the lease expires before the worker confirms
    with pytest.raises(LeaseLost, match="expired"):
        queue.confirm_cancel(running)


@pytest.mark.parametrize("settle", ["nack", "requeue"])
def test_a_failed_or_returned_attempt_after_a_cancel_request_ends_cancelled(
    queue: Queue, clock: FakeClock, settle: str
) -> None:
    queue.create_queue("q", max_attempts=5)
    job = queue.enqueue("q", 1)
    running = claim(queue, worker="w-9")
    queue.cancel(job.id, reason="stop")
    clock.advance(4)

    result = (queue.nack(running, "interrupted") if settle == "nack"
              else queue.requeue(running))

    assert isinstance(result, Job) and result.state is JobState.CANCELLED
    assert result.run_time == 4
    events = queue.history(job.id)
    assert [e.event for e in events][-2:] == (
        ["failed", "cancelled"] if settle == "nack" else ["cancel_requested", "cancelled"])
    assert [e.event for e in events].count("claimed") == 1
    clock.advance(3600)
    assert queue.dequeue("q") is None


def test_an_expired_lease_with_a_cancel_request_is_reaped_cancelled_never_claimed(
    queue: Queue, clock: FakeClock
) -> None:
    queue.create_queue("q", max_attempts=5, visibility_timeout=10)
    job = queue.enqueue("q", 1)
    running = claim(queue, worker="gone")
    queue.cancel(job.id, reason="hung")
    clock.advance(10)

    # Expired with attempts left, yet the claim itself passes it over (no reaper ran yet).
    assert queue.backend.claim("q", limit=1, visibility_timeout=None, now=clock.now,
                               worker="other") == []
    assert queue.reap() == 1
    assert queue.dequeue("q") is None

    cancelled = queue.get_job(job.id)
    assert cancelled.state is JobState.CANCELLED and cancelled.attempts == 1
    last = queue.history(job.id)[-1]
    assert (last.event, last.worker, last.detail, last.run_time) == (
        "cancelled", "gone", "hung", 10)
    with pytest.raises(LeaseLost):
        queue.ack(running)
    assert queue.stats("q").retries == 0 and queue.dead_letters() == []


def test_a_job_whose_lease_already_expired_is_cancelled_at_once(
    queue: Queue, clock: FakeClock
) -> None:
    job = queue.enqueue("q", 1)
    running = claim(queue)
    clock.advance(30)

    cancelled = queue.cancel(job.id)

    assert cancelled.state is JobState.CANCELLED
    with pytest.raises(LeaseLost):
        queue.ack(running)
    assert queue.dequeue("q") is None


# -- reading and keeping cancelled jobs ------------------------------------------------------


def test_cancelled_jobs_are_counted_listed_and_cleaned_up_like_done_ones(
    queue: Queue, clock: FakeClock
) -> None:
    old = queue.enqueue("q", "old")
    queue.cancel(old.id)
    clock.advance(8 * 86400)
    young = queue.enqueue("q", "young")
    queue.cancel(young.id)
    queue.enqueue("q", "ready")

    assert queue.stats("q").cancelled == 2 and queue.stats("q").pending == 1
    assert [j.id for j in queue.list_jobs("q", state="cancelled")] == [young.id, old.id]
    assert queue.cleanup() == 1  # older than the default 7 days
    with pytest.raises(JobNotFound):
        queue.get_job(old.id)
    assert queue.history(old.id) == []
    assert queue.stats("q").cancelled == 1
    queue.delete_queue("q", force=True)
    with pytest.raises(JobNotFound):
        queue.get_job(young.id)


def test_the_result_of_a_cancelled_task_is_a_task_failure(queue: Queue) -> None:
    job = queue.enqueue("q", 1)
    queue.cancel(job.id, reason="too late")
    with pytest.raises(TaskFailed, match="cancelled: too late") as raised:
        queue.result(job.id, timeout=0)
    assert raised.value.error == "too late"


def test_cancel_requests_reads_many_ids_and_refuses_bad_ones(queue: Queue) -> None:
    jobs = [queue.enqueue("q", n) for n in range(3)]
    running = [claim(queue) for _ in jobs]
    queue.cancel(running[1].id)
    assert queue.cancel_requests([j.id for j in jobs]) == {running[1].id}
    assert queue.cancel_requests(()) == set()
    for bad in ("12", [0], [1.5], [True], {"a": 1}, None):
        with pytest.raises(InvalidArgument):
            queue.cancel_requests(bad)  # type: ignore[arg-type]


def test_the_dead_letter_of_a_job_keeps_its_timeout_for_the_redrive(queue: Queue) -> None:
    queue.create_queue("q", max_attempts=1)
    job = queue.enqueue("q", 1, timeout=12)
    letter = queue.nack(claim(queue), "boom")
    assert isinstance(letter, DeadLetter) and letter.timeout == 12
    queue.redrive(job.id)
    assert claim(queue).timeout == 12
