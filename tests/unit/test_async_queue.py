"""AsyncQueue: the Queue's methods as coroutines, waits that hold no thread, a free event loop.

Each test runs its coroutine with ``asyncio.run``; every database test runs on both backends.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import (
    AsyncQueue,
    InvalidArgument,
    InvalidQueueName,
    JobState,
    Queue,
    ResultTimeout,
    TaskFailed,
)
from persistent_queue.aio import _parked_count
from tests.support import ROOT


async def until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "it") -> None:
    """Poll ``condition`` on the event loop until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def run(db: Path | str, body: Callable[[AsyncQueue], Awaitable[None]], **options: object) -> None:
    async def main() -> None:
        async with AsyncQueue(db, durability="normal", **options) as aq:  # type: ignore[arg-type]
            await body(aq)

    asyncio.run(main())


def test_round_trip(db_path: Path | str) -> None:
    async def body(aq: AsyncQueue) -> None:
        job = await aq.enqueue("emails", {"to": "a@b.c"}, priority=3)
        claimed = await aq.dequeue("emails", visibility_timeout=30, wait=5)
        assert claimed is not None and claimed.id == job.id and claimed.payload == {"to": "a@b.c"}
        claimed = await aq.extend(claimed, 60)
        await aq.ack(claimed, result={"sent": True})
        assert (await aq.get_job(job.id)).state is JobState.DONE
        assert await aq.result(job.id, timeout=1) == {"sent": True}

        jobs = await aq.enqueue_many("emails", [1, 2, 3])
        batch = await aq.dequeue_many("emails", 3, wait=1)
        assert sorted(j.id for j in batch) == sorted(j.id for j in jobs)
        await aq.ack_many(batch[:1])
        back = await aq.requeue(batch[1])
        assert back.state is JobState.READY
        failed = await aq.nack(batch[2], "boom", delay=0)
        assert failed.state is JobState.READY and failed.attempts == 1
        cancelled = await aq.cancel(back.id)
        assert cancelled.state is JobState.CANCELLED
        stats = await aq.stats("emails")
        assert (stats.done, stats.ready, stats.cancelled) == (2, 1, 1)
        assert await aq.dequeue("nothing-here") is None

    run(db_path, body)


def test_bad_input_is_refused_with_the_library_error(db_path: Path | str) -> None:
    async def body(aq: AsyncQueue) -> None:
        with pytest.raises(InvalidArgument):
            await aq.dequeue("q", wait=-1)
        with pytest.raises(InvalidArgument):
            await aq.dequeue("q", wait=float("nan"))
        with pytest.raises(InvalidArgument):
            await aq.result(0)
        with pytest.raises(InvalidQueueName):
            await aq.enqueue("bad name!", 1)

    run(db_path, body)

    async def closed() -> None:
        aq = AsyncQueue(db_path, durability="normal")
        await aq.aclose()
        with pytest.raises(InvalidArgument, match="closed"):
            await aq.enqueue("q", 1)
        with pytest.raises(InvalidArgument, match="closed"):
            await aq.dequeue("q", wait=1)
        await aq.aclose()  # twice is fine

    asyncio.run(closed())


def test_wraps_a_queue_without_closing_it(db_path: Path | str) -> None:
    q = Queue(db_path, durability="normal")
    try:
        async def main() -> None:
            async with AsyncQueue(q) as aq:
                await aq.enqueue("q", 1)
        asyncio.run(main())
        assert q.stats("q").ready == 1  # still open
        with pytest.raises(InvalidArgument):
            AsyncQueue(q, durability="full")
    finally:
        q.close()


def test_result_waits_for_the_ack_and_reports_failure_and_timeout(db_path: Path | str) -> None:
    async def body(aq: AsyncQueue) -> None:
        job = await aq.enqueue("q", 1)
        waiting = asyncio.ensure_future(aq.result(job.id, timeout=20))
        await until(lambda: _parked_count(aq) > 0, what="the result wait to park")
        claimed = await aq.dequeue("q")
        started = time.monotonic()
        await aq.ack(claimed, result=42)
        assert await waiting == 42
        assert time.monotonic() - started < 2.0

        other = await aq.enqueue("q", 2, max_attempts=1)
        with pytest.raises(ResultTimeout, match="ready, not done, after 0.2s"):
            await aq.result(other.id, timeout=0.2)
        await aq.nack(await aq.dequeue("q"), "it broke")
        with pytest.raises(TaskFailed, match="it broke"):
            await aq.result(other.id, timeout=5)

    run(db_path, body)


def test_a_waiting_dequeue_is_woken_by_an_enqueue_from_another_process(
        db_path: Path | str) -> None:
    script = ("import sys, time\nfrom persistent_queue import Queue\n"
              "q = Queue(sys.argv[1], durability='normal')\nq.enqueue('jobs', 'hello')\n"
              "print(time.time(), flush=True)\n")

    async def body(aq: AsyncQueue) -> None:
        await aq.create_queue("jobs")  # the child does not race the waiter to create it
        waiter = asyncio.ensure_future(aq.dequeue("jobs", wait=10))
        await until(lambda: _parked_count(aq) > 0, what="the dequeue to park")
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, str(db_path), cwd=ROOT,
            stdout=subprocess.PIPE)
        out, _ = await child.communicate()
        assert child.returncode == 0
        job = await asyncio.wait_for(waiter, 15)
        woken = time.time()
        assert job is not None and job.payload == "hello"
        assert woken - float(out) < 1.0, f"woken {woken - float(out):.2f} s after the commit"

    run(db_path, body)


def test_a_thousand_waits_hold_no_thread(db_path: Path | str) -> None:
    async def body(aq: AsyncQueue) -> None:
        await aq.create_queue("idle")
        before = threading.active_count()
        waiters = [asyncio.ensure_future(aq.dequeue("idle", wait=30)) for _ in range(1000)]
        await until(lambda: _parked_count(aq) == 1000, what="1,000 parked waits")
        assert threading.active_count() <= before + 6  # the pool (4), the watcher
        await aq.enqueue_many("idle", list(range(5)))
        await until(lambda: sum(w.done() for w in waiters) == 5, what="5 waiters served")
        assert sorted(w.result().payload for w in waiters if w.done()) == [0, 1, 2, 3, 4]
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        await until(lambda: _parked_count(aq) == 0, what="cancelled waits unparked")

    run(db_path, body)


def test_a_delayed_job_wakes_a_waiter_when_due(db_path: Path | str) -> None:
    async def body(aq: AsyncQueue) -> None:
        await aq.enqueue("later", 1, delay=0.5)
        started = time.monotonic()
        job = await aq.dequeue("later", wait=10)
        assert job is not None
        assert 0.4 < time.monotonic() - started < 5.0

    run(db_path, body)


def test_the_event_loop_is_never_blocked(db_path: Path | str) -> None:
    """A ticker never runs more than 0.2 s late while producers and consumers work."""

    async def body(aq: AsyncQueue) -> None:
        late: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                asked = time.monotonic()
                await asyncio.sleep(0.02)
                late.append(time.monotonic() - asked - 0.02)

        async def produce() -> None:
            for start in range(0, 200, 20):
                await aq.enqueue_many("load", list(range(start, start + 20)))
                await aq.enqueue("load", start)

        acked = 0

        async def consume() -> None:
            nonlocal acked
            while not stop.is_set():
                job = await aq.dequeue("load", wait=0.5)
                if job is not None:
                    await aq.ack(job)
                    acked += 1

        tick = asyncio.ensure_future(ticker())
        consumers = [asyncio.ensure_future(consume()) for _ in range(20)]
        await asyncio.gather(*(produce() for _ in range(10)))
        await until(lambda: acked == 10 * 210, timeout=120, what="every job acked")
        stop.set()
        await asyncio.gather(tick, *consumers)
        assert len(late) > 20
        assert max(late) < 0.2, f"the loop was blocked {max(late):.3f} s"

    run(db_path, body)


def test_a_cancelled_dequeue_gives_back_the_job_it_claimed(db_path: Path | str) -> None:
    """The claim was already running on the pool when the caller gave up: the job goes back
    at once, not at the end of a lease nobody holds."""

    async def body(aq: AsyncQueue) -> None:
        job = await aq.enqueue("q", "x")
        started, release = threading.Event(), threading.Event()
        claim = aq.queue.dequeue_many

        def slow_claim(*args: Any, **kwargs: Any) -> Any:
            started.set()
            release.wait()
            return claim(*args, **kwargs)

        aq.queue.dequeue_many = slow_claim  # type: ignore[method-assign]
        claiming = asyncio.ensure_future(aq.dequeue("q", visibility_timeout=600, wait=5))
        await until(started.is_set, what="the claim to run")
        claiming.cancel()
        with pytest.raises(asyncio.CancelledError):
            await claiming
        del aq.queue.dequeue_many
        release.set()
        await until(lambda: given_back(aq, job.id), what="the job claimed and given back")
        again = await aq.dequeue("q")
        assert again is not None and again.id == job.id

    def given_back(aq: AsyncQueue, job_id: int) -> bool:
        stored = aq.queue.get_job(job_id)
        return stored.started_at is not None and stored.state is JobState.READY

    run(db_path, body, threads=1)


def test_a_dequeue_cancelled_before_its_claim_ran_claims_nothing(db_path: Path | str) -> None:
    """The claim still waited behind other calls on the pool: it never runs."""

    async def body(aq: AsyncQueue) -> None:
        job = await aq.enqueue("q", "x")
        blocking, release = threading.Event(), threading.Event()

        def block() -> None:
            blocking.set()
            release.wait()

        blocker = asyncio.get_running_loop().run_in_executor(aq._pool, block)
        await until(blocking.is_set, what="the pool's thread to be busy")
        claiming = asyncio.ensure_future(aq.dequeue("q", visibility_timeout=600, wait=5))
        await until(lambda: aq._pool._work_queue.qsize() > 0, what="the claim to queue")
        claiming.cancel()
        with pytest.raises(asyncio.CancelledError):
            await claiming
        release.set()
        await blocker
        await until(lambda: aq._pool._work_queue.qsize() == 0, what="the pool to drain")
        stored = await aq.get_job(job.id)
        assert stored.state is JobState.READY and stored.attempts == 0
        assert stored.started_at is None  # never claimed

    run(db_path, body, threads=1)


def test_one_async_queue_serves_one_event_loop_after_another(db_path: Path | str) -> None:
    """``asyncio.run`` twice (a script, a test client per test) with the same AsyncQueue."""
    aq = AsyncQueue(db_path, durability="normal")

    async def wait_a_little() -> None:
        waiters = [asyncio.ensure_future(aq.dequeue("q", wait=0.3)) for _ in range(3)]
        await aq.enqueue("other", 1)  # a commit: the waiters share a look, then sleep again
        assert await asyncio.gather(*waiters) == [None, None, None]

    asyncio.run(wait_a_little())
    asyncio.run(wait_a_little())
    asyncio.run(aq.aclose())


@pytest.fixture
def many_descriptors() -> Iterator[None]:
    """More than 1,024 open files: a server holding a thousand client sockets."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip("the open-files limit is below 2,048")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_waits_work_with_descriptors_above_1024(db_path: Path | str,
                                                many_descriptors: None) -> None:
    """A connection opened after a thousand sockets has a descriptor above select()'s limit:
    waiting on it must still work (it raised ValueError on PostgreSQL)."""
    with Queue(db_path, durability="normal") as q:
        assert q.dequeue("q", wait=0.2) is None

    async def body(aq: AsyncQueue) -> None:
        await aq.create_queue("q")
        waiter = asyncio.ensure_future(aq.dequeue("q", wait=20))
        await until(lambda: _parked_count(aq) > 0, what="the dequeue to park")
        await asyncio.sleep(0.3)  # the watcher is waiting on its connection
        started = time.monotonic()
        with Queue(db_path, durability="normal") as other:
            other.enqueue("q", 1)
        assert await asyncio.wait_for(waiter, 30) is not None
        assert time.monotonic() - started < 5

    run(db_path, body)


def test_idle_waiters_do_not_spin(db_path: Path | str) -> None:
    """Waiting on an empty queue reads the database a few times per waiter, not in a loop
    (on PostgreSQL has_claimable is always true: it must not be taken for work)."""

    async def body(aq: AsyncQueue) -> None:
        await aq.create_queue("idle")
        calls = 0
        submit = aq._submit

        def counting(call: Callable[[], object]) -> Any:
            nonlocal calls
            calls += 1
            return submit(call)

        aq._submit = counting  # type: ignore[method-assign]
        results = await asyncio.gather(*(aq.dequeue("idle", wait=1.5) for _ in range(20)))
        assert results == [None] * 20
        assert calls < 20 * 4, f"{calls} database calls for 20 idle waits"

    run(db_path, body)


def test_a_waiter_held_back_by_a_limit_gets_the_slot_an_ack_frees(db_path: Path | str) -> None:
    async def body(aq: AsyncQueue) -> None:
        await aq.create_queue("limited", concurrency=1)
        await aq.enqueue_many("limited", [1, 2])
        first = await aq.dequeue("limited")
        assert first is not None
        waiter = asyncio.ensure_future(aq.dequeue("limited", wait=20))
        await until(lambda: _parked_count(aq) > 0, what="the held-back dequeue to park")
        assert not waiter.done()
        started = time.monotonic()
        await aq.ack(first)
        second = await asyncio.wait_for(waiter, 30)
        assert second is not None and second.payload == 2
        assert time.monotonic() - started < 5

    run(db_path, body)
