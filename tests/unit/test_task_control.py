"""A running task's control: its timeout stored with each job, its progress, and cooperative
cancellation through ``current_job()`` (the worker's event, or the database)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from persistent_queue import (
    InvalidArgument,
    Job,
    JobCancelled,
    JobState,
    Queue,
    current_job,
)
from persistent_queue import config as pq_config
from tests.support import FakeClock


def declare(q: Queue, body: Any = None) -> Any:
    @q.task(queue="reports", timeout=300, name="build_report")
    def build_report(day: str) -> str:
        return body(day) if body is not None else day

    return build_report


def claim(q: Queue) -> Job:
    job = q.dequeue("reports", worker="w-1")
    assert job is not None
    return job


def test_a_tasks_timeout_is_stored_with_its_jobs_and_options_override_it(queue: Queue) -> None:
    build_report = declare(queue)
    queue.create_queue("urgent", timeout=2)

    plain = build_report.delay("mon")
    quick = build_report.options(timeout=5).delay("tue")
    elsewhere = build_report.options(queue="urgent").delay("wed")

    assert queue.get_job(plain.id).timeout == 300
    assert queue.get_job(quick.id).timeout == 5
    assert queue.get_job(elsewhere.id).timeout == 300  # the task's own beats the queue's
    assert claim(queue).timeout == 300
    for bad in (0, -5, float("nan"), "60"):
        with pytest.raises(InvalidArgument, match="timeout"):
            build_report.options(timeout=bad)
        with pytest.raises(InvalidArgument, match="timeout"):
            queue.task(lambda: None, timeout=bad, name=f"bad{bad!r}")  # type: ignore[call-overload]


def test_progress_from_a_running_task_is_stored_and_renews_its_lease(
    queue: Queue, clock: FakeClock
) -> None:
    def body(day: str) -> str:
        clock.advance(25)
        current_job().set_progress(0.5, f"half of {day}")
        return day

    declare(queue, body).delay("mon")
    job = claim(queue)

    assert queue.tasks.run(job, queue) == "mon"

    stored = queue.get_job(job.id)
    assert stored.progress == (0.5, "half of mon")
    assert stored.lease_expires_at == clock.now + 30  # renewed: the claim's lease ended sooner


def test_a_task_stops_at_its_cancellation_point_when_the_workers_event_is_set(
    queue: Queue,
) -> None:
    reached = []

    def body(day: str) -> str:
        current_job().raise_if_cancelled()  # not yet
        reached.append("first part")
        cancel.set()
        current_job().raise_if_cancelled()
        reached.append("never")
        return day

    declare(queue, body).delay("mon")
    job = claim(queue)
    queue.cancel(job.id, reason="wrong day")
    cancel = threading.Event()

    with pytest.raises(JobCancelled, match="wrong day") as raised:
        queue.tasks.run(job, queue, cancel=cancel)

    assert reached == ["first part"]
    assert (raised.value.job_id, raised.value.reason) == (job.id, "wrong day")
    assert queue.confirm_cancel(job).state is JobState.CANCELLED  # what the worker does next


def test_set_progress_raises_when_the_job_was_cancelled(queue: Queue) -> None:
    def body(day: str) -> str:
        current_job().set_progress(0.1)
        queue.cancel(current_job().id, reason="stop")
        current_job().set_progress(0.2, "too late")
        return day

    declare(queue, body).delay("mon")
    job = claim(queue)

    with pytest.raises(JobCancelled, match="stop"):
        queue.tasks.run(job, queue)

    assert queue.get_job(job.id).progress == (0.2, "too late")  # stored, then raised


def test_without_an_event_the_database_is_read_at_most_every_half_second(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = [1000.0]
    monkeypatch.setattr("persistent_queue.tasks.time.monotonic", lambda: ticks[0])
    reads: list[list[int]] = []
    real = queue.cancel_requests

    def counted(ids: list[int]) -> set[int]:
        reads.append(list(ids))
        return real(ids)

    monkeypatch.setattr(queue, "cancel_requests", counted)

    def body(day: str) -> str:
        job = current_job()
        job.raise_if_cancelled()  # reads: nothing requested
        queue.cancel(job.id)
        job.raise_if_cancelled()  # within the interval: no read, no raise
        ticks[0] += pq_config.CANCEL_CHECK_INTERVAL
        job.raise_if_cancelled()  # reads again: raises
        return day

    declare(queue, body).delay("mon")
    job = claim(queue)

    with pytest.raises(JobCancelled):
        queue.tasks.run(job, queue)
    assert reads == [[job.id], [job.id]]
