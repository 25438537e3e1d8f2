"""Tasks: ``@q.task`` functions, ``.delay`` and ``.options``, results stored by the ack, waiting
for a result, a fan-in reading its parents' results, the result cap and its retention.

Every test runs on SQLite and PostgreSQL (the ``queue`` fixture)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from persistent_queue import JobState, Queue, TaskFailed, current_job
from persistent_queue import config as pq_config
from persistent_queue.errors import (
    InvalidArgument,
    InvalidPayload,
    JobNotFound,
    LeaseLost,
    NoCurrentJob,
    PayloadTooLarge,
    ResultTimeout,
    UnknownTask,
)
from persistent_queue.tasks import encode_result, task_name
from tests.support import FakeClock


def declare(q: Queue) -> Any:
    @q.task(queue="emails", max_attempts=4, timeout=30)
    def send_email(to: str, subject: str = "") -> dict[str, str]:
        return {"sent": to, "subject": subject}

    return send_email


def work(q: Queue, queue: str = "emails") -> Any:
    """Claim one job and run its task as a worker does; returns (job, value)."""
    (job,) = q.dequeue_many(queue, 1)
    return job, q.tasks.run(job)


# -- declaring and delaying -------------------------------------------------------------------


def test_delay_stores_the_task_name_and_its_arguments_as_json(queue: Queue) -> None:
    send_email = declare(queue)
    handle = send_email.delay("a@b.c", subject="hi")
    job = queue.get_job(handle.id)
    assert send_email.name == f"{__name__}.declare.<locals>.send_email"
    assert job.queue == "emails" and job.max_attempts == 4
    assert job.payload == {"task": send_email.name, "args": ["a@b.c"],
                           "kwargs": {"subject": "hi"}}
    assert job.headers == {"task": send_email.name}
    assert task_name(job) == send_email.name and handle.status is JobState.READY
    assert send_email.timeout == 30


def test_an_argument_that_is_not_json_fails_at_delay_and_stores_nothing(queue: Queue) -> None:
    send_email = declare(queue)
    with pytest.raises(InvalidPayload, match="arguments"):
        send_email.delay(object())
    with pytest.raises(InvalidPayload):
        send_email.delay("a@b.c", subject=float("nan"))
    assert queue.list_jobs("emails") == []


def test_calling_a_task_runs_it_inline_and_stores_nothing(queue: Queue) -> None:
    send_email = declare(queue)
    assert send_email("a@b.c") == {"sent": "a@b.c", "subject": ""}
    assert queue.list_jobs("emails") == []


def test_options_are_those_of_enqueue_and_depends_on_takes_handles(
        queue: Queue, clock: FakeClock) -> None:
    send_email = declare(queue)
    first = send_email.delay("first@b.c")
    handle = send_email.options(delay=10, priority=5, dedup_key="welcome-a", depends_on=[first],
                                headers={"tenant": "acme"}, max_attempts=2,
                                queue="slow").delay("a@b.c")
    job = handle.job
    assert (job.queue, job.priority, job.dedup_key, job.max_attempts) == ("slow", 5,
                                                                           "welcome-a", 2)
    assert job.depends_on == (first.id,) and job.state is JobState.WAITING
    assert job.headers == {"tenant": "acme", "task": send_email.name}
    assert job.available_at == pytest.approx(clock.now + 10)
    again = send_email.options(dedup_key="welcome-a", queue="slow").delay("a@b.c")
    assert again.id == handle.id and again.enqueued.deduplicated


def test_names_are_unique_per_queue_and_a_worker_refuses_what_it_does_not_know(
        queue: Queue) -> None:
    send_email = declare(queue)
    with pytest.raises(InvalidArgument, match="already declared"):
        declare(queue)
    other = Queue(queue.backend)
    (job,) = [send_email.delay("a@b.c").enqueued]
    with pytest.raises(UnknownTask, match=send_email.name):
        other.tasks.run(job)
    raw = queue.enqueue("emails", {"to": "x"})
    with pytest.raises(InvalidPayload, match="not a task job"):
        queue.tasks.run(raw)
    assert task_name(raw) is None


def test_current_job_is_the_running_tasks_job_and_an_error_outside_one(queue: Queue) -> None:
    seen: list[Any] = []

    @queue.task(queue="q", name="probe")
    def probe(x: int) -> int:
        job = current_job()
        seen.append((job.id, job.task, job.args, job.kwargs, job.attempts))
        return x * 2

    handle = probe.delay(21)
    job, value = work(queue, "q")
    assert value == 42 and seen == [(handle.id, "probe", [21], {}, 1)]
    with pytest.raises(NoCurrentJob):
        current_job()


# -- results ----------------------------------------------------------------------------------


def test_ack_stores_the_result_with_the_ack(queue: Queue) -> None:
    send_email = declare(queue)
    handle = send_email.delay("a@b.c")
    job, value = work(queue)
    queue.ack(job, result=value)
    done = queue.get_job(handle.id)
    assert done.state is JobState.DONE and done.result == {"sent": "a@b.c", "subject": ""}
    assert handle.result(timeout=0) == done.result == queue.result(handle.id)


def test_an_ack_that_lost_its_lease_stores_no_result(queue: Queue, clock: FakeClock) -> None:
    send_email = declare(queue)
    handle = send_email.delay("a@b.c")
    (stale,) = queue.dequeue_many("emails", 1, visibility_timeout=5)
    clock.advance(6)
    (current,) = queue.dequeue_many("emails", 1)
    with pytest.raises(LeaseLost):
        queue.ack(stale, result={"from": "the stale worker"})
    assert queue.get_job(handle.id).result is None
    queue.ack(current, result={"from": "the current worker"})
    assert queue.result(handle.id, timeout=0) == {"from": "the current worker"}


def test_a_result_that_is_not_json_or_too_large_fails_and_the_job_stays_leased(
        queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pq_config, "MAX_RESULT_BYTES", 100)
    send_email = declare(queue)
    handle = send_email.delay("a@b.c")
    (job,) = queue.dequeue_many("emails", 1)
    with pytest.raises(PayloadTooLarge, match="limit is 100"):
        encode_result("x" * 200)
    with pytest.raises(PayloadTooLarge):
        queue.ack(job, result="x" * 200)
    with pytest.raises(InvalidPayload, match="task result"):
        queue.ack(job, result={1, 2})
    assert queue.get_job(handle.id).state is JobState.LEASED
    queue.ack(job, result="x" * 50)
    assert handle.result(timeout=0) == "x" * 50


def test_result_waits_for_an_ack_in_another_thread(real_queue: Queue) -> None:
    q = real_queue
    send_email = declare(q)
    handle = send_email.delay("a@b.c")
    got: list[Any] = []
    waiting = threading.Thread(target=lambda: got.append(handle.result(timeout=30)))
    waiting.start()
    with pytest.raises(ResultTimeout):  # not done yet: the waiter is still waiting too
        q.result(handle.id, timeout=0.05)
    assert waiting.is_alive()
    job, value = work(q)
    q.ack(job, result=value)
    waiting.join(timeout=30)
    assert not waiting.is_alive() and got == [{"sent": "a@b.c", "subject": ""}]


def test_result_times_out_with_a_timeout_error_and_unknown_ids_are_not_found(
        queue: Queue) -> None:
    handle = declare(queue).delay("a@b.c")
    with pytest.raises(TimeoutError, match="ready, not done"):
        queue.result(handle.id, timeout=0.01)
    with pytest.raises(JobNotFound):
        queue.result(handle.id + 1000, timeout=0)


def test_result_raises_task_failed_with_the_last_error_once_dead_lettered(
        real_queue: Queue) -> None:
    q = real_queue

    @q.task(queue="q", max_attempts=1, name="fails")
    def fails() -> None:
        raise RuntimeError("boom")

    handle = fails.delay()
    failed: list[TaskFailed] = []

    def wait() -> None:
        try:
            handle.result(timeout=30)
        except TaskFailed as exc:
            failed.append(exc)

    waiting = threading.Thread(target=wait)
    waiting.start()
    (job,) = q.dequeue_many("q", 1)
    with pytest.raises(RuntimeError) as raised:
        q.tasks.run(job)
    q.nack(job, error=f"RuntimeError: {raised.value}")
    waiting.join(timeout=30)
    assert not waiting.is_alive() and len(failed) == 1
    assert failed[0].job_id == handle.id and failed[0].error == "RuntimeError: boom"
    assert handle.status is JobState.DEAD


def test_a_task_that_dead_letters_without_an_error_fails_with_the_reason(queue: Queue) -> None:
    handle = declare(queue).delay("a@b.c")
    queue.move_to_dead_letter_queue(handle.id, reason="operator said no")
    with pytest.raises(TaskFailed, match="operator said no") as failed:
        queue.result(handle.id, timeout=0)
    assert failed.value.error == "operator said no"


def test_a_fan_in_reads_its_parents_results(queue: Queue) -> None:
    @queue.task(queue="q", name="part")
    def part(n: int) -> int:
        return n * n

    @queue.task(queue="q", name="total")
    def total() -> int:
        return sum(current_job().dependency_results().values())

    parents = [part.delay(n) for n in (2, 3)]
    child = total.options(depends_on=parents).delay()
    for _ in parents:
        job, value = work(queue, "q")
        queue.ack(job, result=value)
    assert queue.dependency_results(child.id) == {parents[0].id: 4, parents[1].id: 9}
    job, value = work(queue, "q")
    queue.ack(job, result=value)
    assert child.result(timeout=0) == 13
    assert queue.dependency_results(parents[0].id) == {}
    with pytest.raises(JobNotFound):
        queue.dependency_results(child.id + 1000)


def test_cleanup_deletes_done_jobs_whose_result_outlived_result_ttl(
        db_path: Any, clock: FakeClock) -> None:
    with Queue(db_path, clock=clock, durability="normal", result_ttl=60) as q:
        send_email = declare(q)
        with_result = send_email.delay("a@b.c")
        job, value = work(q)
        q.ack(job, result=value)
        plain = q.enqueue("emails", "raw")
        (job,) = q.dequeue_many("emails", 1)
        q.ack(job)
        clock.advance(30)
        assert q.cleanup(older_than=3600) == 0
        clock.advance(31)
        assert q.cleanup(older_than=3600) == 1
        with pytest.raises(JobNotFound):
            q.result(with_result.id, timeout=0)
        assert q.get_job(plain.id).state is JobState.DONE  # kept for --older-than
        clock.advance(3600)
        assert q.cleanup(older_than=3600) == 1
