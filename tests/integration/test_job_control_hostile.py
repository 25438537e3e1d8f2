"""Control of running jobs, tried as a hostile user and operator would: input that is not
what the API expects, cancels racing claims, acks, nacks and expiring leases from many
threads, dependency graphs that are not trees, handlers that lie about being cancelled or
raise what cannot be printed. Both backends; the worker runs in-process (thread executor).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import Job, JobState, Queue
from persistent_queue.errors import (
    InvalidArgument,
    InvalidDependency,
    InvalidJobState,
    JobCancelled,
    JobNotFound,
    LeaseLost,
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


# -- races: cancels against claims, acks, nacks, returns and expiring leases (held) ----------


class Ledger:
    """What the racing threads saw, each with the monotonic time of the call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.claims: list[tuple[int, float]] = []  # (job id, when the claim call began)
        self.acked: set[int] = set()
        self.cancelled: dict[int, float] = {}  # job id -> when a call returned it cancelled
        self.errors: list[BaseException] = []

    def ended_cancelled(self, job: Job | Any) -> None:
        if isinstance(job, Job) and job.state is JobState.CANCELLED:
            with self.lock:
                self.cancelled.setdefault(job.id, time.monotonic())


def consume(db: Path | str, ledger: Ledger, stop: threading.Event, seed: int) -> None:
    chance = random.Random(seed)
    with Queue(db, durability="normal") as q:
        while not stop.is_set():
            began = time.monotonic()
            try:
                job = q.dequeue("race", visibility_timeout=chance.choice([0.05, 1.0]))
                if job is None:
                    continue
                with ledger.lock:
                    ledger.claims.append((job.id, began))
                stop.wait(chance.uniform(0, 0.003))  # the handler runs
                roll = chance.random()
                if q.cancel_requests([job.id]) and roll < 0.5:
                    ledger.ended_cancelled(q.confirm_cancel(job))
                elif roll < 0.45:
                    q.ack(job)
                    with ledger.lock:
                        ledger.acked.add(job.id)
                elif roll < 0.65:
                    ledger.ended_cancelled(q.nack(job, error="flaky", delay=0))
                elif roll < 0.8:
                    ledger.ended_cancelled(q.requeue(job))
                elif roll < 0.9:
                    q.set_progress(job, 0.5, "halfway")
                    q.ack(job)
                    with ledger.lock:
                        ledger.acked.add(job.id)
                # else: walk away; the lease expires (or a cancel ends it)
            except (LeaseLost, InvalidJobState):
                pass  # the lease expired or was cancelled: the race this test is about
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                ledger.errors.append(exc)
                return


def cancel_at_random(db: Path | str, ids: list[int], ledger: Ledger, stop: threading.Event,
                     seed: int) -> None:
    chance = random.Random(seed)
    with Queue(db, durability="normal") as q:
        while not stop.is_set():
            try:
                ledger.ended_cancelled(q.cancel(chance.choice(ids), reason="race"))
            except (InvalidJobState, JobNotFound):
                pass  # done, cancelled or dead-lettered already
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                ledger.errors.append(exc)
                return
            stop.wait(chance.uniform(0, 0.001))


def test_cancels_racing_claims_acks_nacks_returns_and_expiry_leave_one_outcome_each(
        db_path: Path | str, real_queue: Queue) -> None:
    real_queue.create_queue("race", max_attempts=3)
    ids = [job.id for job in real_queue.enqueue_many("race", list(range(200)))]
    ledger, stop = Ledger(), threading.Event()
    threads = [threading.Thread(target=consume, args=(db_path, ledger, stop, n))
               for n in range(3)]
    threads += [threading.Thread(target=cancel_at_random, args=(db_path, ids, ledger, stop, n))
                for n in range(2)]
    for thread in threads:
        thread.start()

    def all_ended() -> bool:
        stats = real_queue.stats("race")  # reaps too
        return stats.done + stats.cancelled + stats.dead == len(ids) or bool(ledger.errors)

    try:
        wait_for(all_ended, timeout=60, interval=0.1, message="every job done, cancelled or dead")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert ledger.errors == []
    dead = {letter.id for letter in real_queue.dead_letters("race", limit=1000)}
    done = {i for i in ids if (job := real_queue.get_job(i)) and job.state is JobState.DONE}
    cancelled = {i for i in ids
                 if (job := real_queue.get_job(i)) and job.state is JobState.CANCELLED}
    assert done | cancelled | dead == set(ids) and len(done) + len(cancelled) + len(dead) == 200
    assert ledger.acked <= done, "an acknowledged ack was undone"
    assert set(ledger.cancelled) <= cancelled, "a job reported cancelled ended otherwise"
    assert cancelled and done, "the race ran both ways"
    late = [(job_id, began) for job_id, began in ledger.claims
            if job_id in ledger.cancelled and began > ledger.cancelled[job_id]]
    assert late == [], "a job was claimed after it was reported cancelled"
    for job_id in ids:
        events = [event.event for event in real_queue.history(job_id)]
        ends = [e for e in events if e in ("acked", "cancelled", "dead_lettered")]
        expected = ("acked" if job_id in done else "cancelled" if job_id in cancelled
                    else "dead_lettered")
        assert ends == [expected], (job_id, events)


def test_retry_now_racing_claims_runs_each_job_once(db_path: Path | str,
                                                    real_queue: Queue) -> None:
    ids = [job.id for job in real_queue.enqueue_many("race", list(range(100)), delay=3600)]
    claimed: list[int] = []
    errors: list[BaseException] = []
    stop_event = threading.Event()

    def claim_and_ack() -> None:
        with Queue(db_path, durability="normal") as q:
            while not stop_event.is_set():
                job = q.dequeue("race", wait=0.05)
                if job is not None:
                    claimed.append(job.id)
                    q.ack(job)

    def retry_all(order: list[int]) -> None:
        with Queue(db_path, durability="normal") as q:
            for job_id in order:
                try:
                    assert q.retry_now(job_id).state is JobState.READY
                except InvalidJobState:
                    pass  # the other thread was first, or the job is claimed or done
                except BaseException as exc:  # noqa: BLE001 - reported by the test
                    errors.append(exc)

    consumers = [threading.Thread(target=claim_and_ack) for _ in range(3)]
    retriers = [threading.Thread(target=retry_all, args=(order,))
                for order in (ids, list(reversed(ids)))]
    for thread in consumers + retriers:
        thread.start()
    for thread in retriers:
        thread.join(60)
    try:
        wait_for(lambda: real_queue.stats("race").done == 100 or errors, timeout=30,
                 message="every job retried now and done")
    finally:
        stop_event.set()
        for thread in consumers:
            thread.join(30)
    assert errors == []
    assert sorted(claimed) == ids, "each job claimed exactly once"


# -- the timeline of a job that went through the dead letters (held) -------------------------


def test_the_history_of_a_redriven_job_shows_each_life(queue: Queue, clock: FakeClock) -> None:
    job = queue.enqueue("work", 1, max_attempts=1)
    first = queue.dequeue("work", worker="w1", visibility_timeout=5)
    clock.advance(10)  # its worker died on its only attempt
    assert queue.reap() == 1
    queue.redrive(job.id)
    clock.advance(1)
    second = queue.dequeue("work", worker="w2")
    clock.advance(2)
    queue.nack(second, error="boom")
    queue.redrive(job.id)
    clock.advance(1)
    third = queue.dequeue("work", worker="w3")
    assert first and second and third
    clock.advance(1)
    queue.cancel(job.id, reason="enough")
    clock.advance(1)
    queue.confirm_cancel(third)
    timeline = [(e.event, e.attempt, e.worker, e.run_time) for e in queue.history(job.id)]
    assert timeline == [
        ("enqueued", 0, None, None),
        ("claimed", 1, "w1", None), ("lease_expired", 1, "w1", 10.0),
        ("dead_lettered", 1, None, None), ("redriven", 0, None, None),
        ("claimed", 1, "w2", None), ("failed", 1, "w2", 2.0),
        ("dead_lettered", 1, None, None), ("redriven", 0, None, None),
        ("claimed", 1, "w3", None), ("cancel_requested", 1, "w3", None),
        ("cancelled", 1, "w3", 2.0),
    ]
    assert [e.at for e in queue.history(job.id)] == sorted(e.at for e in queue.history(job.id))


# -- hostile bodies over HTTP: 422, never a 500 (held) ---------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "NaN", "Infinity", "1e999", "1" + "0" * 400,
                                   "1" + "0" * 5000, '"5"', "true", "1e300", "[]"])
def test_a_hostile_timeout_over_http_is_a_422(queue: Queue, value: str) -> None:
    from fastapi.testclient import TestClient

    from persistent_queue.api import create_app

    queue.create_queue("work")

    @queue.task(queue="work", name="noop")
    def noop() -> None: ...

    with TestClient(create_app(queue), raise_server_exceptions=False) as client:
        for method, path, body in [
                ("post", "/enqueue", '{"queue": "work", "payload": 1, "timeout": %s}'),
                ("post", "/queues", '{"name": "other", "timeout": %s}'),
                ("patch", "/queues/work", '{"timeout": %s}'),
                ("post", "/tasks/noop", '{"timeout": %s}')]:
            response = client.request(method, path, content=body % value,
                                      headers={"content-type": "application/json"})
            assert response.status_code == 422, (path, response.text)
        job = queue.enqueue("work", 2)
        response = client.post(f"/jobs/{job.id}/cancel", json={"reason": {"a": 1}})
        assert response.status_code == 422
    assert queue.stats("work").ready == 1 and queue.get_queue("work").timeout is None


@pytest.mark.sqlite_only  # parsing and checks happen before any storage
@pytest.mark.parametrize("args", [
    ["enqueue", "work", "1", "--timeout", "nan"],
    ["enqueue", "work", "1", "--timeout", "-1"],
    ["enqueue", "work", "1", "--timeout", "1e999"],
    ["enqueue", "work", "1", "--timeout", "1" + "0" * 400],
    ["worker", "--queues", "work", "--cancel-grace", "nan"],
    ["worker", "--queues", "work", "--cancel-grace", "-1"],
    ["worker", "--queues", "work", "--max-tasks-per-child", "0"],
    ["jobs", "cancel", "1" + "0" * 5000],
    ["jobs", "cancel", "99999999999999999999"],
    ["dlq", "edit", "1", "--priority", "1" + "0" * 400],
], ids=lambda args: " ".join(args)[:40])
def test_hostile_numbers_on_the_command_line_exit_2_in_one_line(
        db_path: Path | str, real_queue: Queue, args: list[str]) -> None:
    from click.testing import CliRunner

    from persistent_queue.cli import cli

    result = CliRunner().invoke(cli, ["--db", str(db_path), "--durability", "normal", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert real_queue.list_jobs("work") == []


@pytest.mark.parametrize("end", ["cancel", "delete"])
def test_ending_a_job_while_dependents_are_enqueued_strands_none(
        db_path: Path | str, real_queue: Queue, end: str) -> None:
    """Each dependent enqueued while its parent is cancelled or deleted is refused (the
    parent is gone) or dead-lettered; none waits for ever for a parent that will never run."""
    parents = [real_queue.enqueue("dag", n).id for n in range(30)]
    real_queue.create_queue("kids")
    children: list[int] = []
    refused: list[int] = []
    errors: list[BaseException] = []
    go = threading.Barrier(3)

    def enqueue_children(seed: int) -> None:
        chance = random.Random(seed)
        with Queue(db_path, durability="normal") as q:
            go.wait()
            for parent in parents * 3:
                try:
                    children.append(q.enqueue("kids", seed, depends_on=[parent]).id)
                except InvalidDependency:  # deleted first: "... which does not exist"
                    refused.append(parent)
                except BaseException as exc:  # noqa: BLE001 - reported by the test
                    errors.append(exc)
                time.sleep(chance.uniform(0, 0.001))

    threads = [threading.Thread(target=enqueue_children, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    go.wait()
    for parent in reversed(parents):  # meeting the enqueuers half-way: both orders happen
        if end == "cancel":
            real_queue.cancel(parent)
        else:
            real_queue.delete_job(parent)
        time.sleep(0.002)
    for thread in threads:
        thread.join(60)
    assert errors == []
    stats = real_queue.stats("kids")
    assert stats.waiting == 0 and stats.ready == 0, stats
    assert stats.dead == len(children) and len(children) + len(refused) == 180
    assert children and (refused or end == "cancel")
