"""Hostile use of flow control, joined transactions and asyncio: absurd limits, odd
connections and misbehaving async tasks each end in a specific error or a working queue,
never a traceback or a stuck consumer."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from persistent_queue import AsyncQueue, InvalidArgument, JobState, Queue
from persistent_queue.aio import _parked_count
from persistent_queue.flow import Rate
from tests.support import ROOT, wait_for

# -- flow control: absurd limits -----------------------------------------------------------


def test_a_rate_count_of_thousands_of_digits_is_invalid_argument(queue: Queue) -> None:
    with pytest.raises(InvalidArgument, match="count must be between 1 and") as raised:
        queue.create_queue("q", rate_limit="9" * 5000 + "/s")
    assert len(str(raised.value)) < 200
    # leading zeros are only zeros
    assert queue.create_queue("q", rate_limit="0" * 4999 + "1/s").rate_limit == "1/s"


def test_a_rate_count_of_thousands_of_digits_exits_2_on_the_command_line(
        tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "persistent_queue", "--db", str(tmp_path / "q.db"), "queues",
         "create", "x", "--rate-limit", "9" * 5000 + "/s"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr) < 500


@pytest.mark.parametrize("text", ["1/0.0000001s", "1/1.0000001s", "7/0.5s", "3/90s",
                                  "1000000/0.000001s"])
def test_a_rate_is_shown_as_text_that_parses_back_to_the_same_rate(queue: Queue,
                                                                   text: str) -> None:
    shown = queue.create_queue("q", rate_limit=text).rate_limit
    assert shown is not None
    assert Rate.parse(shown) == Rate.parse(text)
    assert queue.update_queue("q", rate_limit=shown).rate_limit == shown


# -- asyncio ---------------------------------------------------------------------------------


def test_aclose_ends_every_pending_wait_at_once(db_path: Path | str) -> None:
    async def main() -> None:
        aq = AsyncQueue(db_path, durability="normal")
        await aq.create_queue("e")
        polls = [asyncio.create_task(aq.dequeue("e", wait=60)) for _ in range(300)]
        job = await aq.enqueue("other", {})
        results = [asyncio.create_task(aq.result(job.id, timeout=60))]
        deadline = time.monotonic() + 30
        while _parked_count(aq) < 301:
            assert time.monotonic() < deadline, "the waits did not park"
            await asyncio.sleep(0.01)
        await aq.aclose()
        done, pending = await asyncio.wait(polls + results, timeout=10)
        assert not pending, f"{len(pending)} waits outlived aclose"
        for task in done:
            assert isinstance(task.exception(), InvalidArgument)
            assert "closed" in str(task.exception())

    asyncio.run(main())



def test_dequeues_cancelled_by_the_hundred_never_stall_the_queue(db_path: Path | str) -> None:
    """Claims of dequeues cancelled before the pool ran them do not run: they had piled up
    in the pool (thousands), each claiming a job for nobody and giving it back behind the
    others, until no dequeue ever got a job."""
    count, consumers = 100, 100

    async def main() -> None:
        async with AsyncQueue(db_path, durability="normal") as aq:
            await aq.enqueue_many("w", [{"i": i} for i in range(count)])
            acked: set[int] = set()
            deadline = time.monotonic() + 45

            async def consume(seed: int) -> None:
                patience = 0.0005 + (seed % 20) * 0.002  # 0.5 to 38.5 ms
                while len(acked) < count and time.monotonic() < deadline:
                    try:
                        job = await asyncio.wait_for(
                            aq.dequeue("w", visibility_timeout=60, wait=2), patience)
                    except TimeoutError:
                        continue
                    if job is not None:
                        await aq.ack(job)
                        acked.add(job.id)

            await asyncio.gather(*(consume(seed) for seed in range(consumers)))
            assert len(acked) == count, f"{len(acked)} of {count} jobs acked in 45 s"
            assert aq._pool._work_queue.qsize() < consumers  # noqa: SLF001

    asyncio.run(main())

SELF_CANCELLING_APP = """
import asyncio
import os

from persistent_queue import Queue

q = Queue(os.environ["TASKAPP_DB"])


@q.task(queue="io", name="raises_cancelled", max_attempts=1)
async def raises_cancelled():
    raise asyncio.CancelledError()


@q.task(queue="io", name="awaits_a_cancelled_future", max_attempts=1)
async def awaits_a_cancelled_future():
    future = asyncio.get_running_loop().create_future()
    future.cancel()
    await future
"""


def test_an_async_task_raising_cancelled_error_fails_its_job_and_frees_its_slot(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """Only the worker's own cancellations (a forced cancel, a stop) may end a job as
    cancelled or give it back; a CancelledError of the task's own making is its failure."""
    db = str(tmp_path / "q.db")
    (tmp_path / "taskapp.py").write_text(SELF_CANCELLING_APP)
    q = Queue(db)
    try:
        jobs = [q.enqueue("io", {"task": name, "args": [], "kwargs": {}},
                          headers={"task": name}, max_attempts=1)
                for name in ("raises_cancelled", "awaits_a_cancelled_future")]
        with open(tmp_path / "worker.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "persistent_queue", "worker", "--db", db, "--app",
                 "taskapp:q", "--queues", "io", "--wait", "0.2", "--log-dir", "",
                 "--log-format", "text", "--concurrency", "2"],
                cwd=tmp_path, env={**subprocess_env, "TASKAPP_DB": db}, stdout=log,
                stderr=subprocess.STDOUT)
        try:
            for job in jobs:
                wait_for(lambda j=job: q.get_job(j.id).state is JobState.DEAD, timeout=30,
                         message=f"job {job.id} to fail")
            assert all("CancelledError" in (d.last_error or "") for d in q.dead_letters("io"))
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0  # nothing left in hand
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        q.close()


# -- Django ----------------------------------------------------------------------------------


def test_a_django_task_module_that_exits_at_import_fails_its_job_not_the_worker(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """A module calling sys.exit() at import (a missing setting, say) is a task that does
    not import: its job fails and the worker goes on."""
    pytest.importorskip("django")
    (tmp_path / "exits_at_import.py").write_text(
        "import sys\nsys.exit('API_KEY is not set')\n")
    db = str(tmp_path / "q.db")
    q = Queue(db)
    try:
        exits, adds = ({"task": f"django:{path}", "args": args, "kwargs": {}}
                       for path, args in (("exits_at_import.send", []),
                                          ("shop.tasks.add", [2, 3])))
        broken = q.enqueue("default", exits, headers={"task": exits["task"]}, max_attempts=1)
        fine = q.enqueue("default", adds, headers={"task": adds["task"]}, max_attempts=1)
        env = {**subprocess_env, "PQ_DJANGO_DB": db, "PYTHONPATH": f"{ROOT}:{tmp_path}"}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        done = subprocess.run(
            [sys.executable, "manage.py", "pq_worker", "--wait", "0.2", "--max-jobs", "2",
             "--visibility-timeout", "60"],
            cwd=ROOT / "tests" / "django_project", env=env, capture_output=True, text=True,
            timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        assert q.get_job(broken.id).state is JobState.DEAD
        assert q.get_job(fine.id).state is JobState.DONE and q.get_job(fine.id).result == 5
    finally:
        q.close()
