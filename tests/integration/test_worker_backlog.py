"""A worker draining a backlog: a job thread claims its next job itself (on the connection of
its ack), in the queues' listed order, and a stop never strands a job it claimed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from persistent_queue import Job, JobState, Queue
from persistent_queue import worker as worker_module
from persistent_queue.worker import EXIT_OK, Worker, WorkerConfig
from persistent_queue.worker_claims import claim


def run_in_thread(worker: Worker) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(worker.run()))
    thread.start()
    return thread, codes


def recorder(stop_after: int, holder: list[Worker],
             also: Callable[[Job], None] | None = None) -> tuple[Callable[[Job], None], list[int]]:
    """A handler recording job ids that stops its worker (warm) at the ``stop_after``-th job."""
    seen: list[int] = []
    lock = threading.Lock()

    def handle(job: Job) -> None:
        with lock:
            seen.append(job.id)
            count = len(seen)
        if also is not None:
            also(job)
        if count == stop_after:
            holder[0].request_stop()

    return handle, seen


def test_job_threads_claim_a_backlog_themselves(real_queue: Queue,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [job.id for job in real_queue.enqueue_many("work", list(range(60)))]
    claimers: list[str] = []

    def watched(q: Queue, queues: Sequence[str], count: int, **kwargs: Any) -> list[Job]:
        claimers.append(threading.current_thread().name)
        return claim(q, queues, count, **kwargs)

    monkeypatch.setattr(worker_module, "claim", watched)
    holder: list[Worker] = []
    handle, seen = recorder(len(ids), holder)
    worker = Worker(real_queue, WorkerConfig(queue="work", concurrency=2, log_dir=None,
                                             wait=0.2), handle)
    holder.append(worker)
    thread, codes = run_in_thread(worker)
    thread.join(60)
    assert codes == [EXIT_OK]
    assert sorted(seen) == ids
    assert all(real_queue.get_job(i).state is JobState.DONE for i in ids)
    assert any(name.startswith("job-") for name in claimers), claimers


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_warm_stop_in_a_backlog_runs_or_gives_back_every_job_claimed(
        real_queue: Queue, concurrency: int) -> None:
    ids = [job.id for job in real_queue.enqueue_many("work", list(range(200)))]
    holder: list[Worker] = []
    handle, seen = recorder(30, holder)
    worker = Worker(real_queue, WorkerConfig(queue="work", concurrency=concurrency,
                                             log_dir=None, wait=0.2), handle)
    holder.append(worker)
    thread, codes = run_in_thread(worker)
    thread.join(60)
    assert codes == [EXIT_OK]
    states = {i: real_queue.get_job(i).state for i in ids}
    done = sorted(i for i, state in states.items() if state is JobState.DONE)
    assert len(seen) == len(set(seen)) and sorted(seen) == done
    assert all(states[i] is JobState.READY for i in set(ids) - set(done))
    assert worker.processed == len(done)


def test_a_job_thread_claims_from_the_first_listed_queue_first(real_queue: Queue) -> None:
    low = [job.id for job in real_queue.enqueue_many("low", list(range(5)))]
    urgent: list[int] = []

    def enqueue_urgent(job: Job) -> None:
        if job.id == low[0]:
            urgent.append(real_queue.enqueue("high", "urgent").id)

    holder: list[Worker] = []
    handle, seen = recorder(6, holder, also=enqueue_urgent)
    worker = Worker(real_queue, WorkerConfig(queues=("high", "low"), log_dir=None, wait=0.2),
                    handle)
    holder.append(worker)
    thread, codes = run_in_thread(worker)
    thread.join(60)
    assert codes == [EXIT_OK]
    assert seen == [low[0], *urgent, *low[1:]]
