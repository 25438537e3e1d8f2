"""Group commit: concurrent enqueues and acks of one process share a transaction, never
their fate.

To make a group form deterministically, a second connection holds the write lock: the first
enqueue (the leader) waits for it, every later one queues behind the leader, and releasing
the lock lets the leader finish alone and hand the lead to a group of all the others.

SQLite only: on PostgreSQL the server itself flushes the WAL of concurrent commits together.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import InvalidDependency, Job, JobState, LeaseLost, Queue, QueueFull
from persistent_queue.storage.sqlite import SQLiteBackend
from tests.support import FakeClock, wait_for

pytestmark = pytest.mark.sqlite_only


def group_of(q: Queue) -> Any:
    assert isinstance(q.backend, SQLiteBackend)
    return q.backend.dialect._group  # noqa: SLF001 - the test watches the queue of waiting requests


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def run_grouped(q: Queue, path: Path, calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads so that all but the first form one group, queued in the
    order given (each thread starts once the one before it is queued); each call's return
    value or exception, in order."""
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        except Exception as exc:  # noqa: BLE001 - compared by the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    group = group_of(q)
    with write_lock_held(path):
        threads[0].start()
        wait_for(lambda: group._leading and not group._pending, message="a leader")
        for queued, thread in enumerate(threads[1:], start=1):
            thread.start()
            wait_for(lambda n=queued: len(group._pending) == n, message=f"request {queued} queued")
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    return results


@pytest.fixture
def full_queue(db_path: Path, clock: FakeClock) -> Iterator[Queue]:
    q = Queue(db_path, clock=clock, durability="full", busy_timeout=60)
    yield q
    q.close()


def test_group_commit_is_on_in_full_durability_only(db_path: Path) -> None:
    with Queue(db_path, durability="full") as full, Queue(db_path, durability="normal") as normal:
        assert isinstance(full.backend, SQLiteBackend)
        assert isinstance(normal.backend, SQLiteBackend)
        assert full.backend.dialect.group_commit is True
        assert normal.backend.dialect.group_commit is False


def test_every_caller_gets_its_own_job(full_queue: Queue, db_path: Path) -> None:
    full_queue.enqueue("q", "warm-up")  # the queue exists; the schema is created
    calls = [lambda n=n: full_queue.enqueue("q", {"n": n}, priority=n % 3) for n in range(12)]

    results = run_grouped(full_queue, db_path, calls)

    assert all(isinstance(job, Job) for job in results), results
    assert len({job.id for job in results}) == 12
    for n, job in enumerate(results):
        assert job.payload == {"n": n} and job.priority == n % 3
        assert full_queue.get_job(job.id) == job
    group = group_of(full_queue)
    assert group.groups == 1 and group.grouped == 11


def test_one_request_failing_fails_only_that_request(full_queue: Queue, db_path: Path) -> None:
    full_queue.create_queue("small", max_size=1)
    full_queue.enqueue("small", "fills it")
    parent = full_queue.enqueue("q", "parent")
    calls: list[Callable[[], Any]] = [
        lambda: full_queue.enqueue("q", "leader"),
        lambda: full_queue.enqueue("q", "before"),
        lambda: full_queue.enqueue("small", "no room"),                 # QueueFull
        lambda: full_queue.enqueue("q", "child", depends_on=[parent]),  # fine
        lambda: full_queue.enqueue("q", "orphan", depends_on=[10**9]),  # no such job
        lambda: full_queue.enqueue_many("q", ["m1", "m2"]),
        lambda: full_queue.enqueue("q", "after"),
    ]

    results = run_grouped(full_queue, db_path, calls)

    assert isinstance(results[2], QueueFull)
    assert isinstance(results[4], InvalidDependency)
    stored = [results[0], results[1], results[3], *results[5], results[6]]
    assert [job.payload for job in stored] == ["leader", "before", "child", "m1", "m2", "after"]
    for job in stored:
        assert full_queue.get_job(job.id).payload == job.payload
    assert full_queue.stats("small").pending == 1
    assert [j.payload for j in full_queue.list_jobs("q", limit=50, newest_first=False)] == [
        "parent", "leader", "before", "child", "m1", "m2", "after"]
    assert group_of(full_queue).groups == 1


def test_acks_are_grouped_and_a_stale_lease_fails_only_its_own_ack(
    full_queue: Queue, db_path: Path
) -> None:
    full_queue.enqueue_many("q", list(range(6)))
    claimed = full_queue.dequeue_many("q", 6)
    stale = dataclasses.replace(claimed[3], lease_token="0" * 32)
    calls: list[Callable[[], Any]] = [
        lambda job=job: full_queue.ack(job) for job in (*claimed[:3], stale, *claimed[4:])]

    results = run_grouped(full_queue, db_path, calls)

    assert isinstance(results[3], LeaseLost)
    assert [r for i, r in enumerate(results) if i != 3] == [None] * 5
    assert [full_queue.get_job(job.id).state for job in claimed] == [
        JobState.DONE] * 3 + [JobState.LEASED] + [JobState.DONE] * 2
    assert group_of(full_queue).groups == 1


def test_grouped_claims_each_get_their_own_jobs(full_queue: Queue, db_path: Path) -> None:
    full_queue.enqueue_many("q", list(range(20)))
    calls: list[Callable[[], Any]] = [lambda: full_queue.dequeue_many("q", 3)
                                      for _ in range(8)]

    results = run_grouped(full_queue, db_path, calls)

    ids = [job.id for batch in results for job in batch]
    assert len(ids) == len(set(ids)) == 20  # 6 callers got 3, one got 2, one got none
    assert sorted(len(batch) for batch in results) == [0, 2, 3, 3, 3, 3, 3, 3]
    tokens = {job.lease_token for batch in results for job in batch}
    assert len(tokens) == 20
    full_queue.ack_many([job for batch in results for job in batch])
    assert full_queue.stats("q").done == 20


def test_enqueues_inside_atomic_are_never_grouped(full_queue: Queue) -> None:
    with full_queue.atomic():
        job = full_queue.enqueue("q", "mine")
        full_queue.set_value("k", "v")
    assert full_queue.get_job(job.id).payload == "mine"
    assert group_of(full_queue).groups == 0


def test_many_threads_lose_and_duplicate_nothing(full_queue: Queue) -> None:
    full_queue.enqueue("q", "warm-up")
    ids: list[list[int]] = [[] for _ in range(8)]

    def produce(index: int) -> None:
        for n in range(25):
            ids[index].append(full_queue.enqueue("q", [index, n]).id)

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    flat = [job_id for part in ids for job_id in part]
    assert len(flat) == len(set(flat)) == 200
    for index, part in enumerate(ids):
        assert [full_queue.get_job(i).payload for i in part] == [[index, n] for n in range(25)]


def test_a_forked_child_starts_with_no_leader_and_can_enqueue(full_queue: Queue,
                                                              db_path: Path) -> None:
    import os

    full_queue.enqueue("q", "parent")
    group = group_of(full_queue)
    group._lock.acquire()  # as if another thread of the parent held it at the fork
    try:
        pid = os.fork()
        if pid == 0:  # the child: exit code 0 only if its enqueue is stored
            try:
                job = full_queue.enqueue("q", "child")
                os._exit(0 if full_queue.get_job(job.id).payload == "child" else 1)
            except BaseException:  # noqa: BLE001
                os._exit(2)
    finally:
        group._lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [j.payload for j in full_queue.list_jobs("q", newest_first=False)] == [
        "parent", "child"]
