"""Claiming: which job a consumer gets, when, and how long it may wait for one."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from persistent_queue import Job, JobState, Queue
from tests.support import FakeClock


def claim(queue: Queue, name: str = "q") -> Job:
    job = queue.dequeue(name)
    assert job is not None, f"expected a job in {name!r}"
    return job


def test_a_claim_leases_the_job(queue: Queue, clock: FakeClock) -> None:
    job = queue.enqueue("q", {"n": 1})
    claimed = claim(queue)

    assert claimed.id == job.id and claimed.payload == {"n": 1}
    assert claimed.state is JobState.LEASED
    assert claimed.attempts == 1
    assert claimed.lease_token
    assert claimed.lease_expires_at == clock.now + 30
    stored = queue.get_job(job.id)
    assert stored.state is JobState.LEASED and stored.attempts == 1
    assert stored.lease_token is None  # the token is only handed to the claimer


def test_a_leased_job_is_not_claimed_twice(queue: Queue) -> None:
    queue.enqueue("q", 1)
    claim(queue)
    assert queue.dequeue("q") is None


def test_higher_priority_first_then_fifo_within_a_priority(queue: Queue) -> None:
    low1 = queue.enqueue("q", "low1", priority=-5)
    mid1 = queue.enqueue("q", "mid1")
    high = queue.enqueue("q", "high", priority=10)
    mid2 = queue.enqueue("q", "mid2")
    low2 = queue.enqueue("q", "low2", priority=-5)

    order = [claim(queue).id for _ in range(5)]

    assert order == [high.id, mid1.id, mid2.id, low1.id, low2.id]
    assert queue.dequeue("q") is None


def test_dequeue_many_returns_jobs_in_claim_order(queue: Queue) -> None:
    a = queue.enqueue("q", "a")
    b = queue.enqueue("q", "b", priority=1)
    c = queue.enqueue("q", "c")
    assert [job.id for job in queue.dequeue_many("q", 10)] == [b.id, a.id, c.id]


def test_dequeue_many_claims_at_most_the_limit(queue: Queue) -> None:
    queue.enqueue_many("q", list(range(10)))

    first = queue.dequeue_many("q", 4)
    second = queue.dequeue_many("q", 4)
    third = queue.dequeue_many("q", 4)

    assert [len(first), len(second), len(third)] == [4, 4, 2]
    ids = [job.id for job in first + second + third]
    assert len(set(ids)) == 10
    assert all(job.state is JobState.LEASED for job in first + second + third)
    assert queue.dequeue_many("q", 4) == []


def test_never_before_available_at(queue: Queue, clock: FakeClock) -> None:
    later = queue.enqueue("q", "later", delay=5, priority=100)
    now = queue.enqueue("q", "now")

    assert claim(queue).id == now.id  # the higher-priority job is not due yet
    assert queue.dequeue("q") is None
    clock.advance(4.999)
    assert queue.dequeue("q") is None
    clock.advance(0.001)
    assert claim(queue).id == later.id


def test_never_from_a_paused_queue_until_resumed(queue: Queue) -> None:
    job = queue.enqueue("q", 1)
    queue.pause("q")

    assert queue.get_queue("q").paused is True
    assert queue.dequeue("q") is None
    assert queue.dequeue_many("q", 10) == []
    queue.enqueue("q", 2)  # producers may still enqueue
    assert queue.dequeue("q") is None

    queue.resume("q")
    assert queue.get_queue("q").paused is False
    assert claim(queue).id == job.id


def test_pausing_one_queue_leaves_others_alone(queue: Queue) -> None:
    queue.enqueue("paused", 1)
    other = queue.enqueue("running", 2)
    queue.pause("paused")
    assert claim(queue, "running").id == other.id


def test_queues_are_independent(queue: Queue) -> None:
    a = queue.enqueue("a", 1, priority=100)
    b = queue.enqueue("b", 2)
    assert claim(queue, "b").id == b.id
    assert queue.dequeue("b") is None
    assert claim(queue, "a").id == a.id


def test_each_claim_gets_a_fresh_random_token_and_counts_an_attempt(
    queue: Queue, clock: FakeClock
) -> None:
    queue.enqueue("q", 1)
    tokens = []
    for attempt in range(1, 5):
        job = claim(queue)
        assert job.attempts == attempt
        tokens.append(job.lease_token)
        clock.advance(31)  # let the lease expire so the job is claimable again
    assert len(set(tokens)) == 4
    assert all(isinstance(t, str) and len(t) >= 32 for t in tokens)


def test_tokens_differ_between_jobs_claimed_together(queue: Queue) -> None:
    queue.enqueue_many("q", list(range(50)))
    tokens = {job.lease_token for job in queue.dequeue_many("q", 50)}
    assert len(tokens) == 50


def test_visibility_timeout_per_claim(queue: Queue, clock: FakeClock) -> None:
    queue.enqueue("q", 1)
    job = queue.dequeue("q", visibility_timeout=5)
    assert job is not None and job.lease_expires_at == clock.now + 5
    clock.advance(5)
    again = queue.dequeue("q")
    assert again is not None and again.id == job.id and again.attempts == 2


def test_the_queue_visibility_timeout_is_the_default(queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("slow", visibility_timeout=600)
    queue.enqueue("slow", 1)
    job = claim(queue, "slow")
    assert job.lease_expires_at == clock.now + 600


def test_dequeue_on_an_unknown_queue_returns_none(queue: Queue) -> None:
    assert queue.dequeue("never-heard-of-it") is None
    assert queue.dequeue_many("never-heard-of-it", 5) == []
    assert queue.list_queues() == []  # a claim does not create queues


def test_dequeue_on_an_empty_queue_returns_none(queue: Queue) -> None:
    job = queue.enqueue("q", 1)
    queue.ack(claim(queue))
    assert queue.get_job(job.id).state is JobState.DONE
    assert queue.dequeue("q") is None


def test_wait_returns_a_job_enqueued_by_another_thread(db_path: Path) -> None:
    consumer = Queue(db_path, durability="normal")
    producer = Queue(db_path, durability="normal")
    consumer.create_queue("q")
    result: list[Job | None] = []
    started = threading.Event()

    def consume() -> None:
        started.set()
        result.append(consumer.dequeue("q", wait=60))

    thread = threading.Thread(target=consume)
    begin = time.monotonic()
    thread.start()
    started.wait(30)
    job = producer.enqueue("q", "hello")
    thread.join(60)

    assert result and result[0] is not None and result[0].id == job.id
    assert time.monotonic() - begin < 30  # woken by the commit, not by the 60 s deadline
    consumer.close()
    producer.close()


def test_wait_returns_a_job_enqueued_by_another_process(
    db_path: Path, subprocess_env: dict[str, str]
) -> None:
    consumer = Queue(db_path, durability="normal")
    consumer.create_queue("q")
    script = (
        "import sys; from persistent_queue import Queue; "
        "Queue(sys.argv[1]).enqueue('q', 'from another process')"
    )
    begin = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", script, str(db_path)], env=subprocess_env)
    try:
        job = consumer.dequeue("q", wait=90)
    finally:
        assert child.wait(60) == 0

    assert job is not None and job.payload == "from another process"
    assert time.monotonic() - begin < 60
    consumer.close()


def test_wait_returns_none_after_roughly_the_wait(real_queue: Queue) -> None:
    real_queue.create_queue("q")
    begin = time.monotonic()
    assert real_queue.dequeue("q", wait=0.5) is None
    elapsed = time.monotonic() - begin
    assert 0.45 <= elapsed < 15


def test_wait_picks_up_a_delayed_job_when_it_becomes_due(real_queue: Queue) -> None:
    job = real_queue.enqueue("q", 1, delay=0.3)
    claimed = real_queue.dequeue("q", wait=30)
    assert claimed is not None and claimed.id == job.id
    assert real_queue.now() >= job.available_at


@pytest.mark.parametrize("count", [0, -1, 10_001, 1.5, True])
def test_dequeue_many_count_must_be_a_sane_integer(queue: Queue, count: object) -> None:
    queue.enqueue("q", 1)
    with pytest.raises(ValueError):
        queue.dequeue_many("q", count)  # type: ignore[arg-type]
    assert queue.get_job(1).state is JobState.READY


def test_after_many_done_jobs_the_next_ready_job_is_found(queue: Queue) -> None:
    jobs = queue.enqueue_many("q", list(range(500)))
    for claimed in queue.dequeue_many("q", 499):
        queue.ack(claimed)
    assert claim(queue).id == jobs[-1].id
    assert queue.stats("q").done == 499


def test_a_waiting_dequeue_on_a_paused_queue_wakes_when_it_is_resumed(db_path: Path) -> None:
    consumer = Queue(db_path, durability="normal")
    operator = Queue(db_path, durability="normal")
    job = operator.enqueue("q", 1)
    operator.pause("q")
    begin = time.monotonic()
    assert consumer.dequeue("q", wait=0.3) is None
    assert time.monotonic() - begin >= 0.25
    result: list[Job | None] = []
    thread = threading.Thread(target=lambda: result.append(consumer.dequeue("q", wait=60)))
    thread.start()
    operator.resume("q")
    thread.join(60)
    assert result and result[0] is not None and result[0].id == job.id
    consumer.close()
    operator.close()


def test_threads_sharing_one_queue_object_claim_each_job_once(db_path: Path) -> None:
    q = Queue(db_path, durability="normal")
    ids = {job.id for job in q.enqueue_many("q", list(range(400)))}
    acked: list[list[int]] = [[] for _ in range(4)]
    failures: list[BaseException] = []

    def work(mine: list[int]) -> None:
        try:
            while (job := q.dequeue("q")) is not None:
                q.ack(job)
                mine.append(job.id)
        except BaseException as exc:  # reported to the test thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(mine,)) for mine in acked]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert failures == []
    everything = [job_id for mine in acked for job_id in mine]
    assert len(everything) == len(set(everything)) == 400
    assert set(everything) == ids
    q.close()


@pytest.mark.sqlite_only
def test_polling_an_empty_queue_does_not_wait_for_the_write_lock(db_path: Path) -> None:
    import sqlite3

    q = Queue(db_path, busy_timeout=10, durability="normal")
    q.create_queue("empty")
    writer = sqlite3.connect(db_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # e.g. a long batch enqueue or cleanup in progress
    try:
        begin = time.monotonic()
        assert q.dequeue("empty") is None
        assert q.dequeue_many("unknown", 5) == []
        assert time.monotonic() - begin < 5  # waiting for the lock would take the 10 s
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        q.close()
