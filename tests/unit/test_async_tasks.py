"""Async tasks: ``async def`` tasks, ``await task.adelay()``, ``await handle.aresult()``."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistent_queue import InvalidPayload, Queue, current_job
from persistent_queue.tasks import task_name


@pytest.fixture
def app(db_path: Path | str) -> Iterator[Queue]:
    q = Queue(db_path, durability="normal")
    yield q
    q.close()


def test_an_async_task_is_stored_run_and_awaited(app: Queue) -> None:
    @app.task(queue="fetch", name="fetch")
    async def fetch(url: str, *, times: int = 1) -> dict[str, object]:
        await asyncio.sleep(0)
        return {"url": url, "times": times, "job": current_job().id}

    assert fetch.is_async
    inline = fetch("x")  # calling it inline gives the coroutine, as calling it would
    assert inspect.iscoroutine(inline)
    inline.close()

    async def main() -> None:
        handle = await fetch.adelay("https://example.org", times=2)
        later = await fetch.options(priority=-5).adelay("b")
        assert handle.task == "fetch" and later.job.priority == -5
        job = app.dequeue("fetch")
        assert job is not None and job.id == handle.id and task_name(job) == "fetch"
        value = await app.tasks.arun(job, app)
        assert value == {"url": "https://example.org", "times": 2, "job": job.id}
        waiting = asyncio.ensure_future(handle.aresult(timeout=20))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: app.ack(job, result=value))
        assert await waiting == value

    asyncio.run(main())


def test_delay_and_run_work_without_a_loop(app: Queue) -> None:
    """``delay`` stores an async task's job; ``registry.run`` (the process executor's child)
    runs it to completion on a loop of its own."""

    @app.task(name="double")
    async def double(x: int) -> int:
        await asyncio.sleep(0.01)
        return 2 * current_job().args[0]

    handle = double.delay(21)
    job = app.dequeue("default")
    assert job is not None and job.id == handle.id
    assert app.tasks.run(job, app) == 42
    app.ack(job, result=42)
    assert handle.result(timeout=1) == 42


def test_aresult_waits_for_an_ack_from_another_thread(app: Queue) -> None:
    @app.task(name="slow")
    async def slow() -> str:
        return "done"

    async def main() -> None:
        handle = await slow.adelay()

        def worker() -> None:
            job = app.dequeue("default", wait=10)
            assert job is not None
            app.ack(job, result="done")

        thread = threading.Thread(target=worker)
        thread.start()
        try:
            assert await handle.aresult(timeout=20) == "done"
        finally:
            thread.join()

    asyncio.run(main())


def test_adelay_refuses_arguments_that_are_not_json(app: Queue) -> None:
    @app.task(name="t")
    async def t(x: object) -> None:
        return None

    async def main() -> None:
        with pytest.raises(InvalidPayload, match="arguments"):
            await t.adelay(object())

    asyncio.run(main())
    assert app.list_jobs("default") == []
