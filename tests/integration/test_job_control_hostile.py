"""Control of running jobs, tried as a hostile user and operator would: input that is not
what the API expects, cancels racing claims, acks, nacks and expiring leases from many
threads, dependency graphs that are not trees, handlers that lie about being cancelled or
raise what cannot be printed. Both backends; the worker runs in-process (thread executor).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from persistent_queue import Job, JobState, Queue
from persistent_queue.errors import (
    InvalidArgument,
    JobCancelled,
)
from tests.integration.test_worker_control import start, stop
from tests.support import FakeClock, wait_for

HUGE = 10**400  # an int no float can hold


class Unprintable:
    """A value whose ``str()`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("cannot be shown")


class UnprintableError(Exception):
    """An exception whose message cannot be shown."""

    def __str__(self) -> str:
        raise RuntimeError("cannot be shown")


# -- bad input: a specific error, nothing written --------------------------------------------


@pytest.mark.parametrize("call", [
    lambda q, job: q.enqueue("work", 1, timeout=HUGE),
    lambda q, job: q.create_queue("other", timeout=HUGE),
    lambda q, job: q.update_queue("work", timeout=HUGE),
    lambda q, job: q.set_progress(job, HUGE),
    lambda q, job: q.set_progress(job, 0.5, visibility_timeout=HUGE),
    lambda q, job: q.enqueue("work", 1, delay=HUGE),
    lambda q, job: q.task(queue="work", timeout=HUGE)(lambda: None),
], ids=["enqueue", "create_queue", "update_queue", "fraction", "progress_lease", "delay",
        "task"])
def test_numbers_too_large_for_a_float_are_refused(
        queue: Queue, call: Callable[[Queue, Job], Any]) -> None:
    queue.create_queue("work")
    queue.enqueue("work", 0)
    job = queue.dequeue("work")
    assert job is not None
    with pytest.raises(InvalidArgument, match="too large"):
        call(queue, job)
    after = queue.get_job(job.id)
    assert after.progress is None and after.lease_expires_at == job.lease_expires_at
    assert [q.name for q in queue.list_queues()] == ["work"]
    assert queue.stats("work").ready == 0


@pytest.mark.parametrize("call", [
    lambda q: q.cancel(10**5000),
    lambda q: q.delete_job(10**5000),
    lambda q: q.retry_now(10**5000),
    lambda q: q.history(10**5000),
    lambda q: q.cancel_requests([10**5000]),
    lambda q: q.enqueue("work", 1, priority=10**5000),
], ids=["cancel", "delete_job", "retry_now", "history", "cancel_requests", "priority"])
def test_an_integer_too_long_to_print_is_refused_by_its_size(
        queue: Queue, call: Callable[[Queue], Any]) -> None:
    with pytest.raises(InvalidArgument, match="an integer of 16610 bits"):
        call(queue)


@pytest.mark.parametrize("text", [Unprintable(), 10**5000], ids=["str_raises", "huge_int"])
def test_a_message_or_reason_that_cannot_be_shown_is_refused(queue: Queue, text: object) -> None:
    running = queue.enqueue("work", 0)
    job = queue.dequeue("work")
    assert job is not None and job.id == running.id
    waiting = queue.enqueue("work", 1)
    with pytest.raises(InvalidArgument, match="message"):
        queue.set_progress(job, 0.5, text)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="reason"):
        queue.cancel(waiting.id, reason=text)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="error"):
        queue.nack(job, error=text)  # type: ignore[arg-type]
    assert queue.get_job(job.id).progress is None
    assert queue.get_job(waiting.id).state is JobState.READY
    assert queue.get_job(job.id).state is JobState.LEASED


# -- cancelling or deleting a job whose dependents form a diamond ----------------------------


def diamond(q: Queue) -> tuple[Job, Job, Job, Job]:
    """A; B waits for A; C waits for B; D waits for A and B (reached twice from A)."""
    a = q.enqueue("dag", "A")
    b = q.enqueue("dag", "B", depends_on=[a.id])
    c = q.enqueue("dag", "C", depends_on=[b.id])
    d = q.enqueue("dag", "D", depends_on=[a.id, b.id])
    return a, b, c, d


def dead_reasons(q: Queue) -> dict[Any, str]:
    return {letter.payload: letter.reason for letter in q.dead_letters("dag")}


@pytest.mark.parametrize("end", ["cancel", "delete"])
def test_ending_a_queued_job_whose_dependents_form_a_diamond(queue: Queue, end: str) -> None:
    a, b, c, d = diamond(queue)
    if end == "cancel":
        assert queue.cancel(a.id).state is JobState.CANCELLED
        first = "dependency cancelled"
    else:
        queue.delete_job(a.id)
        first = "dependency deleted"
    assert dead_reasons(queue) == {"B": first, "D": first, "C": "dependency failed"}
    assert queue.stats("dag").waiting == 0
    assert queue.redrive(b.id) == [b.id]  # B runs without A; C, which died with it, is back
    assert queue.get_job(b.id).state is JobState.READY
    assert queue.get_job(c.id).state is JobState.WAITING
    assert dead_reasons(queue) == {"D": first}


@pytest.mark.parametrize("end", ["confirm", "nack", "reaper"])
def test_cancelling_a_running_job_whose_dependents_form_a_diamond(
        queue: Queue, clock: FakeClock, end: str) -> None:
    a, b, c, d = diamond(queue)
    crashed = queue.enqueue("other", "x", max_attempts=1)
    running = queue.dequeue("dag", visibility_timeout=5)
    assert running is not None and running.id == a.id
    queue.cancel(a.id, reason="wrong input")
    if end == "confirm":
        queue.confirm_cancel(running)
    elif end == "nack":
        queue.nack(running, error="stopped")
    else:  # its worker died; so did the other job's, on its last attempt
        assert queue.dequeue("other", visibility_timeout=5) is not None
        clock.advance(10)
        assert queue.reap() == 2
    assert queue.get_job(a.id).state is JobState.CANCELLED
    assert dead_reasons(queue) == {"B": "dependency cancelled", "D": "dependency cancelled",
                                   "C": "dependency failed"}
    stats = queue.stats("dag")  # reads (and reaps) as before
    assert (stats.cancelled, stats.dead, stats.waiting) == (1, 3, 0)
    if end == "reaper":
        assert [letter.id for letter in queue.dead_letters("other")] == [crashed.id]


# -- handlers that lie or cannot be described (thread executor) ------------------------------


def test_a_handler_raising_job_cancelled_uninvited_fails_its_attempt(real_queue: Queue) -> None:
    real_queue.create_queue("work", visibility_timeout=30, max_attempts=1)

    def handler(job: Job) -> None:
        raise JobCancelled("nobody asked", job_id=job.id)

    job = real_queue.enqueue("work", 1)
    worker, thread = start(real_queue, handler)
    dead = wait_for(lambda: next(iter(real_queue.dead_letters("work")), None), timeout=10,
                    message="the attempt failed (not left to its 30 s lease)")
    assert stop(worker, thread) == 0
    assert dead.id == job.id and dead.reason == "failed 1 of 1 attempts"
    assert dead.last_error.startswith("JobCancelled: nobody asked")


def test_an_exception_that_cannot_be_shown_fails_its_attempt(real_queue: Queue) -> None:
    real_queue.create_queue("work", visibility_timeout=30, max_attempts=1)

    def handler(job: Job) -> None:
        raise UnprintableError

    job = real_queue.enqueue("work", 1)
    worker, thread = start(real_queue, handler)
    dead = wait_for(lambda: next(iter(real_queue.dead_letters("work")), None), timeout=10,
                    message="the attempt failed (not left to its 30 s lease)")
    assert stop(worker, thread) == 0
    assert dead.id == job.id and dead.reason == "failed 1 of 1 attempts"
    assert dead.last_error.startswith("UnprintableError: <exception str() failed>")
    assert "raise UnprintableError" in dead.last_error  # the traceback is kept
