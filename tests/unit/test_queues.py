"""Queues as objects: settings, lifecycle, statistics and housekeeping."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from persistent_queue import (
    DeadLetter,
    InvalidArgument,
    Job,
    JobNotFound,
    JobState,
    QueueAlreadyExists,
    QueueNotEmpty,
    QueueNotFound,
    QueueStats,
)
from persistent_queue import Queue as PQueue
from tests.support import FakeClock


def claim(queue: PQueue, name: str = "q") -> Job:
    job = queue.dequeue(name)
    assert job is not None
    return job


# -- create ------------------------------------------------------------------------------------


def test_create_queue_with_its_own_settings(queue: PQueue, clock: FakeClock) -> None:
    info = queue.create_queue("emails", max_attempts=3, visibility_timeout=90, max_size=1000)
    assert (info.name, info.max_attempts, info.visibility_timeout, info.max_size) == (
        "emails", 3, 90.0, 1000)
    assert info.paused is False and info.created_at == info.updated_at == clock.now
    assert queue.get_queue("emails") == info
    assert [q.name for q in queue.list_queues()] == ["emails"]


def test_create_queue_twice_is_refused_unless_exist_ok(queue: PQueue) -> None:
    first = queue.create_queue("emails", max_attempts=3)
    with pytest.raises(QueueAlreadyExists):
        queue.create_queue("emails", max_attempts=9)
    assert queue.create_queue("emails", max_attempts=9, exist_ok=True) == first
    assert queue.get_queue("emails").max_attempts == 3


def test_queues_are_listed_by_name(queue: PQueue) -> None:
    for name in ("b", "c", "a"):
        queue.create_queue(name)
    assert [q.name for q in queue.list_queues()] == ["a", "b", "c"]


def test_an_unknown_queue_is_queue_not_found(queue: PQueue) -> None:
    with pytest.raises(QueueNotFound):
        queue.get_queue("nope")
    with pytest.raises(QueueNotFound):
        queue.update_queue("nope", max_attempts=2)
    with pytest.raises(QueueNotFound):
        queue.delete_queue("nope")
    with pytest.raises(QueueNotFound):
        queue.pause("nope")
    with pytest.raises(QueueNotFound):
        queue.purge("nope")
    with pytest.raises(QueueNotFound):
        queue.stats("nope")


# -- update ------------------------------------------------------------------------------------


def test_update_queue_changes_only_what_is_given(queue: PQueue, clock: FakeClock) -> None:
    queue.create_queue("q", max_attempts=3, visibility_timeout=10, max_size=5)
    clock.advance(1)
    info = queue.update_queue("q", visibility_timeout=20)
    assert (info.max_attempts, info.visibility_timeout, info.max_size) == (3, 20.0, 5)
    assert info.updated_at == clock.now
    assert queue.update_queue("q", max_size=None).max_size is None


def test_max_attempts_applies_live_to_jobs_that_did_not_set_their_own(queue: PQueue) -> None:
    queue.create_queue("q", max_attempts=5)
    inherits = queue.enqueue("q", "inherits")
    own = queue.enqueue("q", "own", max_attempts=5)

    queue.update_queue("q", max_attempts=1)

    assert queue.get_job(inherits.id).max_attempts == 1
    assert queue.get_job(own.id).max_attempts == 5
    first, second = claim(queue), claim(queue)
    assert {first.id, second.id} == {inherits.id, own.id}
    by_id = {first.id: first, second.id: second}
    assert isinstance(queue.nack(by_id[inherits.id], "x"), DeadLetter)
    assert isinstance(queue.nack(by_id[own.id], "x"), Job)


def test_raising_max_attempts_revives_an_exhausted_expired_lease(
    queue: PQueue, clock: FakeClock
) -> None:
    queue.create_queue("q", max_attempts=1)
    job = queue.enqueue("q", 1)
    claim(queue)
    queue.update_queue("q", max_attempts=2)
    clock.advance(30)
    again = claim(queue)
    assert again.id == job.id and again.attempts == 2


def test_visibility_timeout_change_applies_to_the_next_claim(
    queue: PQueue, clock: FakeClock
) -> None:
    queue.create_queue("q", visibility_timeout=10)
    queue.enqueue_many("q", [1, 2])
    assert claim(queue).lease_expires_at == clock.now + 10
    queue.update_queue("q", visibility_timeout=99)
    assert claim(queue).lease_expires_at == clock.now + 99


# -- delete ------------------------------------------------------------------------------------


def test_delete_an_empty_queue(queue: PQueue) -> None:
    queue.create_queue("q")
    queue.delete_queue("q")
    assert queue.list_queues() == []


def test_delete_refuses_unfinished_jobs_unless_forced(queue: PQueue) -> None:
    ready = queue.enqueue("q", 1)
    queue.enqueue("q", 2)
    claim(queue)

    with pytest.raises(QueueNotEmpty, match="2 unfinished"):
        queue.delete_queue("q")
    assert queue.get_job(ready.id).state is JobState.LEASED

    queue.delete_queue("q", force=True)
    assert queue.list_queues() == []
    with pytest.raises(JobNotFound):
        queue.get_job(ready.id)


def test_delete_takes_done_jobs_and_history_with_it(queue: PQueue) -> None:
    queue.create_queue("q", max_attempts=2)
    job = queue.enqueue("q", 1)
    queue.nack(claim(queue), "once", delay=0)
    queue.ack(claim(queue))
    other = queue.enqueue("other", 1)

    queue.delete_queue("q")

    with pytest.raises(JobNotFound):
        queue.get_job(job.id)
    assert queue.history(job.id) == []
    assert queue.get_job(other.id).state is JobState.READY


# -- pause / purge -----------------------------------------------------------------------------


def test_pause_and_resume_show_in_settings_and_stats(queue: PQueue) -> None:
    queue.create_queue("q")
    assert queue.pause("q").paused is True
    assert queue.stats("q").paused is True
    assert queue.resume("q").paused is False
    assert queue.stats("q").paused is False


def test_purge_deletes_unfinished_jobs_only(queue: PQueue) -> None:
    queue.create_queue("q", max_attempts=1)
    done = queue.enqueue("q", "done")
    queue.ack(claim(queue))
    queue.enqueue("q", "dead")
    queue.nack(claim(queue))
    leased = queue.enqueue("q", "leased")
    held = claim(queue)
    queue.enqueue("q", "ready")
    queue.enqueue("q", "later", delay=60)
    untouched = queue.enqueue("other", "x")

    assert queue.purge("q") == 3

    assert queue.get_job(done.id).state is JobState.DONE
    assert len(queue.dead_letters("q")) == 1
    assert queue.get_job(untouched.id).state is JobState.READY
    with pytest.raises(JobNotFound):
        queue.get_job(leased.id)
    with pytest.raises(JobNotFound):  # the lease held on a purged job is gone
        queue.ack(held)
    assert queue.dequeue("q") is None


# -- stats -------------------------------------------------------------------------------------


def test_stats_count_every_state(queue: PQueue, clock: FakeClock) -> None:
    queue.create_queue("q", max_attempts=1)
    queue.enqueue_many("q", ["acked", "failed", "expiring", "held"])
    queue.ack(claim(queue))
    queue.nack(claim(queue), "bad")
    queue.dequeue("q", visibility_timeout=5)
    queue.dequeue("q", visibility_timeout=500)
    clock.advance(4)
    queue.enqueue("q", "ready-1")
    clock.advance(2)  # the 5 s lease has expired (on its last attempt)
    queue.enqueue("q", "ready-2")
    queue.enqueue("q", "scheduled", delay=60)

    stats = queue.stats("q")

    assert stats == QueueStats(
        queue="q", waiting=0, ready=2, scheduled=1, leased=1, expired=0, done=1, dead=2,
        paused=False, oldest_ready_age=2.0, retries=2,
    )
    assert stats.pending == 4
    assert queue.stats() == {"q": stats}


def test_stats_count_an_expired_lease_that_may_be_retried(
    queue: PQueue, clock: FakeClock
) -> None:
    queue.enqueue("q", 1)
    claim(queue)
    clock.advance(31)
    stats = queue.stats("q")
    assert (stats.leased, stats.expired, stats.ready) == (1, 1, 0)


def test_stats_of_an_empty_queue(queue: PQueue) -> None:
    queue.create_queue("empty")
    assert queue.stats("empty") == QueueStats(queue="empty")
    assert queue.stats("empty").oldest_ready_age is None


def test_stats_of_all_queues(queue: PQueue) -> None:
    queue.enqueue("a", 1)
    queue.enqueue_many("b", [1, 2])
    all_stats = queue.stats()
    assert sorted(all_stats) == ["a", "b"]
    assert (all_stats["a"].ready, all_stats["b"].ready) == (1, 2)


# -- cleanup -----------------------------------------------------------------------------------


def test_cleanup_removes_only_old_done_jobs(queue: PQueue, clock: FakeClock) -> None:
    old_done = queue.enqueue("q", "old")
    queue.ack(claim(queue))
    dead = queue.enqueue("q", "dead")
    queue.move_to_dead_letter_queue(dead.id)
    old_ready = queue.enqueue("q", "ready for a long time", priority=-1)
    clock.advance(timedelta(days=8).total_seconds())
    recent_done = queue.enqueue("q", "recent", priority=2)
    queue.ack(claim(queue))
    leased = queue.enqueue("q", "leased", priority=1)
    assert claim(queue).id == leased.id

    assert queue.cleanup() == 1

    with pytest.raises(JobNotFound):
        queue.get_job(old_done.id)
    assert queue.get_job(recent_done.id).state is JobState.DONE
    assert queue.get_job(old_ready.id).state is JobState.READY
    assert queue.get_job(leased.id).state is JobState.LEASED
    assert queue.get_job(dead.id).state is JobState.DEAD
    assert queue.cleanup(timedelta(days=1)) == 0
    assert queue.cleanup(0) == 1


def test_cleanup_by_queue_with_a_small_batch(queue: PQueue, clock: FakeClock) -> None:
    for name in ("a", "b"):
        queue.enqueue_many(name, list(range(25)))
        for job in queue.dequeue_many(name, 25):
            queue.ack(job)
    clock.advance(10)
    assert queue.cleanup(5, queue="a", batch=7) == 25
    assert queue.stats("a").done == 0 and queue.stats("b").done == 25
    assert queue.cleanup(0, vacuum=True) == 25
    assert queue.list_jobs() == []


# -- throughput --------------------------------------------------------------------------------


def test_throughput_buckets(queue: PQueue, clock: FakeClock) -> None:
    clock.now = 1_700_000_080.0  # 40 s into a minute (minutes start at multiples of 60)
    queue.create_queue("q", max_attempts=1)
    queue.enqueue_many("q", [1, 2, 3])
    queue.ack(claim(queue))
    clock.advance(30)  # next minute
    queue.ack(claim(queue))
    queue.nack(claim(queue), "boom")
    queue.enqueue("q", 4)

    points = {(p.queue, p.bucket): p for p in queue.throughput(window=3600, bucket=60)}

    first, second = 1_700_000_040.0, 1_700_000_100.0
    assert set(points) == {("q", first), ("q", second)}
    assert (points["q", first].enqueued, points["q", first].acked) == (3, 1)
    p = points["q", second]
    assert (p.enqueued, p.acked, p.failed, p.dead) == (1, 1, 1, 1)


def test_throughput_only_covers_the_window(queue: PQueue, clock: FakeClock) -> None:
    queue.enqueue("q", 1)
    clock.advance(7200)
    queue.enqueue("q", 2)
    points = queue.throughput(window=3600, bucket=600)
    assert sum(p.enqueued for p in points) == 1


@pytest.mark.sqlite_only
def test_cleanup_with_vacuum_returns_the_space_to_the_file_system(
    queue: PQueue, db_path: Path
) -> None:
    blob = "x" * 4000
    for _ in range(4):
        for job in queue.dequeue_many("q", len(queue.enqueue_many("q", [blob] * 500))):
            queue.ack(job)
    queue.cleanup(0)  # without vacuum the pages stay in the file
    # Everything copied into the file first (the checkpoint thread may not be done yet).
    assert queue.backend.dialect.truncate_wal()  # type: ignore[attr-defined]
    full_size = db_path.stat().st_size
    assert full_size > 8_000_000

    queue.cleanup(0, vacuum=True)

    assert queue.backend.execute_read("PRAGMA freelist_count")[0][0] == 0  # type: ignore[attr-defined]
    assert db_path.stat().st_size < full_size / 10


def test_the_largest_max_size_is_stored_on_every_backend_and_one_past_it_refused(
    queue: PQueue,
) -> None:
    # PostgreSQL stores max_size in a 32-bit column: a larger bound passed validation and
    # then failed as a StorageError ("integer out of range").
    assert queue.create_queue("big", max_size=2**31 - 1).max_size == 2**31 - 1
    with pytest.raises(InvalidArgument, match="max_size"):
        queue.create_queue("bigger", max_size=2**31)
    with pytest.raises(InvalidArgument, match="max_size"):
        queue.update_queue("big", max_size=2**40)
    assert queue.get_queue("big").max_size == 2**31 - 1
