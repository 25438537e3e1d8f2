"""``Queue(":memory:")``: one in-memory database for every thread of the queue object."""

from __future__ import annotations

import threading

import pytest

from persistent_queue import Queue

pytestmark = pytest.mark.sqlite_only


def test_threads_of_one_memory_queue_share_its_jobs() -> None:
    q = Queue(":memory:", durability="normal")
    job = q.enqueue("work", {"n": 1})
    seen: list[object] = []
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            claimed = q.dequeue("work")
            assert claimed is not None
            seen.append(claimed.payload)
            q.ack(claimed)
        except BaseException as exc:  # reported below, with the assertion that failed
            errors.append(exc)

    thread = threading.Thread(target=consume)
    thread.start()
    thread.join(30)
    assert not errors, errors
    assert seen == [{"n": 1}]
    assert q.get_job(job.id).state.value == "done"
    q.close()


def test_two_memory_queues_are_separate_databases() -> None:
    first, second = Queue(":memory:"), Queue(":memory:")
    first.enqueue("work", 1)
    assert second.dequeue("work") is None
    assert first.dequeue("work") is not None
    first.close()
    second.close()


def test_many_threads_enqueue_into_one_memory_queue() -> None:
    q = Queue(":memory:", durability="normal", busy_timeout=30)

    def produce(start: int) -> None:
        for n in range(start, start + 25):
            q.enqueue("work", n)

    threads = [threading.Thread(target=produce, args=(i * 25,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    payloads = sorted(job.payload for job in q.dequeue_many("work", 1000))
    assert payloads == list(range(100))
    q.close()
