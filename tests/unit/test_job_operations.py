"""Operating on one job: progress from its handler, run-time limits, who claimed it, and an
operator's delete, retry-now and dead-letter edit, each in every state and with bad input."""

from __future__ import annotations

import os
import socket

import pytest

from persistent_queue import (
    InvalidArgument,
    InvalidJobState,
    InvalidPayload,
    Job,
    JobNotFound,
    JobState,
    LeaseLost,
    PayloadTooLarge,
    Progress,
    Queue,
)
from tests.support import FakeClock


def claim(queue: Queue, name: str = "q", **options: object) -> Job:
    job = queue.dequeue(name, **options)  # type: ignore[arg-type]
    assert job is not None
    return job


# -- progress --------------------------------------------------------------------------------


def test_progress_is_stored_renews_the_lease_and_the_next_claim_clears_it(
    queue: Queue, clock: FakeClock
) -> None:
    queue.create_queue("q", visibility_timeout=30)
    job = queue.enqueue("q", 1)
    running = claim(queue)
    clock.advance(20)

    stored = queue.set_progress(running, 0.25, "part 1 of 4")

    assert stored.progress == Progress(0.25, "part 1 of 4") == (0.25, "part 1 of 4")
    assert stored.lease_expires_at == clock.now + 30 and not stored.cancel_requested
    assert queue.get_job(job.id).progress == (0.25, "part 1 of 4")
    assert queue.get_job(job.id).to_dict()["progress"] == {"fraction": 0.25,
                                                           "message": "part 1 of 4"}
    # Never shortened: a long extension stays; a longer visibility_timeout lengthens it.
    queue.extend(running, 600)
    assert queue.set_progress(running, 0.5).lease_expires_at == clock.now + 600
    assert queue.set_progress(running, 0.5, visibility_timeout=900).lease_expires_at == (
        clock.now + 900)
    assert queue.get_job(job.id).progress == (0.5, None)
    queue.nack(running, "boom", delay=0)
    assert queue.get_job(job.id).progress == (0.5, None)  # the failed attempt's, kept
    assert claim(queue).progress is None and queue.get_job(job.id).progress is None


def test_progress_is_fenced_by_the_lease(queue: Queue, clock: FakeClock) -> None:
    job = queue.enqueue("q", 1)
    first = claim(queue)
    clock.advance(30)
    second = claim(queue)
    before = queue.get_job(job.id)

    with pytest.raises(LeaseLost, match="stale"):
        queue.set_progress(first, 0.9, "from a stale worker")

    assert queue.get_job(job.id) == before
    assert queue.set_progress(second, 0.1).progress == (0.1, None)
    queue.ack(second)
    with pytest.raises(LeaseLost, match="done, not leased"):
        queue.set_progress(second, 1.0)


def test_progress_reports_a_cancel_request(queue: Queue) -> None:
    job = queue.enqueue("q", 1)
    running = claim(queue)
    queue.cancel(job.id, reason="enough")
    stored = queue.set_progress(running, 0.5)
    assert stored.cancel_requested and stored.cancel_reason == "enough"
    assert stored.state is JobState.LEASED  # the worker confirms the cancel


@pytest.mark.parametrize("fraction", [-0.01, 1.01, float("nan"), float("inf"), "0.5", None,
                                      True])
def test_progress_out_of_range_is_refused_and_nothing_changes(
    queue: Queue, fraction: object
) -> None:
    job = queue.enqueue("q", 1)
    running = claim(queue)
    before = queue.get_job(job.id)
    with pytest.raises(InvalidArgument):
        queue.set_progress(running, fraction)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        queue.set_progress(running, 0.5, visibility_timeout=0)
    with pytest.raises(InvalidArgument, match="lease token"):
        queue.set_progress(job.id, 0.5)  # type: ignore[arg-type]
    assert queue.get_job(job.id) == before


def test_a_long_progress_message_is_truncated(queue: Queue) -> None:
    queue.enqueue("q", 1)
    stored = queue.set_progress(claim(queue), 1, "é" * 5000)
    assert stored.progress is not None and stored.progress.fraction == 1.0
    assert stored.progress.message is not None and len(stored.progress.message) == 1024


# -- run-time limits and who claimed ---------------------------------------------------------


def test_the_claim_carries_the_timeout_the_jobs_own_beating_the_queues(
    queue: Queue, clock: FakeClock
) -> None:
    queue.create_queue("q", timeout=60)
    own = queue.enqueue("q", "own", timeout=5, priority=2)
    batch = queue.enqueue_many("q", ["a", "b"], timeout=7, priority=1)
    inherited = queue.enqueue("q", "inherited")
    assert (own.timeout, batch[0].timeout, inherited.timeout) == (5, 7, 60)

    assert [claim(queue).timeout for _ in range(4)] == [5, 7, 7, 60]
    assert queue.get_job(inherited.id).timeout == 60
    queue.update_queue("q", timeout=None)  # removes the queue's limit
    assert queue.get_queue("q").timeout is None
    assert queue.get_job(inherited.id).timeout is None
    assert queue.get_job(own.id).timeout == 5
    queue.update_queue("q", max_attempts=9)  # timeout not given: unchanged
    queue.update_queue("q", timeout=30)
    assert queue.get_queue("q").timeout == 30 and queue.get_queue("q").max_attempts == 9


def test_a_job_without_any_timeout_has_none(queue: Queue) -> None:
    queue.enqueue("q", 1)
    assert claim(queue).timeout is None and queue.get_queue("q").timeout is None


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "5", True,
                                     400 * 86400])
def test_a_bad_timeout_is_refused_everywhere(queue: Queue, timeout: object) -> None:
    queue.create_queue("q")
    for call in (lambda: queue.enqueue("q", 1, timeout=timeout),  # type: ignore[arg-type]
                 lambda: queue.enqueue_many("q", [1], timeout=timeout),  # type: ignore[arg-type]
                 lambda: queue.create_queue("r", timeout=timeout),  # type: ignore[arg-type]
                 lambda: queue.update_queue("q", timeout=timeout)):  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="timeout"):
            call()
    assert queue.list_jobs() == [] and [q.name for q in queue.list_queues()] == ["q"]


def test_a_claim_records_its_worker_and_start(queue: Queue, clock: FakeClock) -> None:
    queue.enqueue_many("q", [1, 2])
    named = claim(queue, worker="host-a/worker-3")
    clock.advance(1)
    default = claim(queue)
    assert (named.claimed_by, named.started_at) == ("host-a/worker-3", clock.now - 1)
    assert default.claimed_by == queue.default_worker == f"{os.getpid()}@{socket.gethostname()}"
    assert queue.get_job(default.id).started_at == clock.now
    for bad in ("", "x" * 257, "tab\there", 7):
        with pytest.raises(InvalidArgument, match="worker"):
            queue.dequeue("q", worker=bad)  # type: ignore[arg-type]


# -- delete ----------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["ready", "delayed", "waiting", "done", "cancelled"])
def test_a_job_that_is_not_leased_is_deleted_with_its_history(
    queue: Queue, state: str
) -> None:
    parent = queue.enqueue("q", "parent", delay=60)
    job = {
        "ready": lambda: queue.enqueue("q", 1),
        "delayed": lambda: queue.enqueue("q", 1, delay=60),
        "waiting": lambda: queue.enqueue("q", 1, depends_on=[parent]),
        "done": lambda: queue.enqueue("q", 1),
        "cancelled": lambda: queue.enqueue("q", 1),
    }[state]()
    if state == "done":
        queue.ack(claim(queue))
    if state == "cancelled":
        queue.cancel(job.id)

    queue.delete_job(job.id)

    with pytest.raises(JobNotFound):
        queue.get_job(job.id)
    assert queue.history(job.id) == []
    with pytest.raises(JobNotFound):
        queue.delete_job(job.id)
    assert queue.get_job(parent.id).state is JobState.READY


def test_deleting_an_unfinished_job_dead_letters_what_waits_for_it(queue: Queue) -> None:
    parent = queue.enqueue("q", "parent")
    child = queue.enqueue("q", "child", depends_on=[parent])
    done_parent = queue.enqueue("q", "done parent", priority=5)
    queue.ack(claim(queue))
    sibling = queue.enqueue("q", "sibling", depends_on=[done_parent])

    queue.delete_job(parent.id)
    queue.delete_job(done_parent.id)  # done: what depended on it already ran or is ready

    [letter] = queue.dead_letters()
    assert (letter.id, letter.reason) == (child.id, "dependency deleted")
    assert queue.get_job(sibling.id).state is JobState.READY
    queue.redrive(child.id)  # the deleted parent no longer holds it back
    assert queue.get_job(child.id).state is JobState.READY


def test_a_leased_or_dead_lettered_job_is_not_deleted(queue: Queue) -> None:
    queue.create_queue("q", max_attempts=1)
    leased = queue.enqueue("q", 1)
    running = claim(queue)
    dead = queue.enqueue("q", 2)
    queue.nack(claim(queue), "boom")

    with pytest.raises(InvalidJobState, match="cancel it first"):
        queue.delete_job(leased.id)
    with pytest.raises(InvalidJobState, match="purge it"):
        queue.delete_job(dead.id)
    with pytest.raises(InvalidArgument):
        queue.delete_job("1")  # type: ignore[arg-type]
    queue.ack(running)
    assert [d.id for d in queue.dead_letters()] == [dead.id]


# -- retry now -------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["delayed", "backing off"])
def test_retry_now_makes_a_delayed_or_backing_off_job_claimable(
    queue: Queue, clock: FakeClock, how: str
) -> None:
    job = queue.enqueue("q", 1, delay=3600 if how == "delayed" else 0)
    if how == "backing off":
        queue.nack(claim(queue), "flaky", delay=600)
    assert queue.dequeue("q") is None

    again = queue.retry_now(job.id)

    assert again.state is JobState.READY and again.available_at == clock.now
    assert claim(queue).id == job.id


def test_retry_now_refuses_every_other_state_and_says_why(queue: Queue) -> None:
    queue.create_queue("q", max_attempts=1)
    ready = queue.enqueue("q", 1)
    waiting = queue.enqueue("q", 2, depends_on=[ready])
    leased = queue.enqueue("q", 3, priority=9)
    claim(queue)
    cancelled = queue.enqueue("q", 4, delay=60)
    queue.cancel(cancelled.id)
    dead = queue.enqueue("q", 5, priority=9)
    queue.nack(claim(queue), "boom")

    for job_id, why in ((ready.id, "already claimable"), (waiting.id, "is waiting"),
                        (leased.id, "is leased"), (cancelled.id, "is cancelled"),
                        (dead.id, "dead-lettered: redrive it")):
        with pytest.raises(InvalidJobState, match=why):
            queue.retry_now(job_id)
    with pytest.raises(JobNotFound):
        queue.retry_now(424242)


# -- editing a dead letter -------------------------------------------------------------------


def test_a_dead_letter_is_edited_then_redriven_with_the_change(queue: Queue) -> None:
    queue.create_queue("q", max_attempts=1)
    job = queue.enqueue("q", {"sku": "A-1"}, headers={"tenant": "t1"}, priority=1)
    queue.nack(claim(queue), "unknown sku")

    edited = queue.edit_dead_letter(job.id, payload={"sku": "A-01"}, priority=7)

    assert (edited.payload, edited.headers, edited.priority) == (
        {"sku": "A-01"}, {"tenant": "t1"}, 7)
    assert edited.reason == "failed 1 of 1 attempts"
    assert queue.edit_dead_letter(job.id, headers=None).headers == {}
    assert queue.edit_dead_letter(job.id, payload=None).payload is None  # JSON null
    assert queue.edit_dead_letter(job.id) == queue.dead_letters()[0]  # nothing given
    queue.edit_dead_letter(job.id, payload={"sku": "A-01"}, headers={"tenant": "t2"})
    queue.redrive(job.id)
    again = claim(queue)
    assert (again.payload, again.headers, again.priority) == (
        {"sku": "A-01"}, {"tenant": "t2"}, 7)


def test_a_dead_letter_edit_is_validated_as_an_enqueue(db_path: object,
                                                      clock: FakeClock) -> None:
    small = Queue(db_path, clock=clock, durability="normal",  # type: ignore[arg-type]
                  max_payload_bytes=64)
    try:
        small.create_queue("q", max_attempts=1)
        job = small.enqueue("q", "x")
        small.nack(claim(small), "boom")
        before = small.dead_letters()
        for changes, error in (({"payload": "y" * 100}, PayloadTooLarge),
                               ({"payload": float("nan")}, InvalidPayload),
                               ({"payload": {1: "a"}}, InvalidPayload),
                               ({"headers": {"bad key": 1}}, InvalidPayload),
                               ({"headers": {"k": [1]}}, InvalidPayload),
                               ({"headers": "k=v"}, InvalidPayload),
                               ({"priority": 2**40}, InvalidArgument),
                               ({"priority": "1"}, InvalidArgument)):
            with pytest.raises(error):
                small.edit_dead_letter(job.id, **changes)  # type: ignore[arg-type]
        assert small.dead_letters() == before
    finally:
        small.close()


def test_only_a_dead_letter_can_be_edited(queue: Queue) -> None:
    live = queue.enqueue("q", 1)
    with pytest.raises(InvalidJobState, match="not dead-lettered"):
        queue.edit_dead_letter(live.id, payload=2)
    with pytest.raises(JobNotFound):
        queue.edit_dead_letter(424242, payload=2)
    assert queue.get_job(live.id).payload == 1
