"""A worker of several queues: listed order is priority, any queue's work wakes it, and the
registration shows every queue."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from persistent_queue import Job, Queue, QueueError
from persistent_queue.commands.worker import worker as worker_command
from persistent_queue.worker import EXIT_OK, Worker, WorkerConfig
from persistent_queue.worker_claims import claim


def test_the_first_listed_queue_with_work_is_claimed_first(real_queue: Queue) -> None:
    low = [real_queue.enqueue("low", n).id for n in range(3)]
    high = [real_queue.enqueue("high", n).id for n in range(3)]
    seen: list[int] = []
    settings = WorkerConfig(queues=("high", "low"), log_dir=None, wait=0.2, max_jobs=6)
    worker = Worker(real_queue, settings, lambda job: seen.append(job.id))
    assert worker.run() == EXIT_OK
    assert seen == high + low


def test_slots_left_by_the_first_queue_are_filled_from_the_next(real_queue: Queue) -> None:
    first = real_queue.enqueue("high", 1).id
    rest = [real_queue.enqueue("low", n).id for n in range(3)]
    seen: list[int] = []
    lock = threading.Lock()

    def record(job: Job) -> None:
        with lock:
            seen.append(job.id)

    settings = WorkerConfig(queues=("high", "low"), log_dir=None, wait=0.2, max_jobs=4,
                            concurrency=4)
    assert Worker(real_queue, settings, record).run() == EXIT_OK
    assert sorted(seen) == sorted([first, *rest])


def test_an_idle_claim_wakes_for_work_on_any_of_its_queues(
        real_queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    waiting = threading.Event()
    wait_for_change = real_queue.backend.wait_for_change

    def spy(timeout: float, poll_interval: float, queue: str | None = None) -> bool:
        waiting.set()
        return wait_for_change(timeout, poll_interval, queue)

    monkeypatch.setattr(real_queue.backend, "wait_for_change", spy)
    claimed: list[list[Job]] = []
    thread = threading.Thread(target=lambda: claimed.append(
        claim(real_queue, ("a", "b"), 1, wait=20.0, visibility_timeout=None)))
    thread.start()
    assert waiting.wait(30)  # both queues were found empty; it sleeps on the change signal
    enqueued = time.monotonic()
    job = real_queue.enqueue("b", 1)  # the second queue: the wait is on both
    thread.join(30)
    # Tens of ms: the commit wakes the wait. A wait that ran its course would take ~20 s.
    assert time.monotonic() - enqueued < 10
    assert [j.id for j in claimed[0]] == [job.id]


def test_a_delayed_job_on_the_second_queue_is_claimed_when_due(real_queue: Queue) -> None:
    job = real_queue.enqueue("b", 1, delay=0.5)
    seen: list[int] = []
    settings = WorkerConfig(queues=("a", "b"), log_dir=None, wait=20.0, max_jobs=1)
    began = time.monotonic()
    assert Worker(real_queue, settings, lambda j: seen.append(j.id)).run() == EXIT_OK
    assert seen == [job.id] and time.monotonic() - began < 10


def test_the_registration_lists_every_queue(real_queue: Queue) -> None:
    real_queue.enqueue("b", 1)
    settings = WorkerConfig(queues=("a", "b"), log_dir=None, wait=0.2, max_jobs=1)
    worker = Worker(real_queue, settings, lambda job: None)
    assert worker.run() == EXIT_OK
    assert {w.id: w for w in real_queue.workers()}[worker.id].queues == ["a", "b"]


def test_queue_alone_still_configures_one_queue() -> None:
    settings = WorkerConfig(queue="emails")
    assert settings.queues == ("emails",) and settings.queue == "emails"
    assert WorkerConfig(queues=("x", "y")).queue == "x"


@pytest.mark.parametrize("kwargs, message", [
    ({}, "needs a queue"),
    ({"queue": "a", "queues": ("b", "c")}, "not both"),
    ({"queues": ("a", "a")}, "listed twice"),
    ({"queues": ("a", "")}, "invalid queue name"),
])
def test_bad_queue_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(QueueError, match=message):
        WorkerConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("args, message", [
    ([], "a queue to consume is required"),
    (["--queue", "a", "--queues", "b,c"], "give --queue or --queues, not both"),
    (["--queues", "a,,b"], "invalid queue name"),
])
def test_the_command_refuses_bad_queue_flags(tmp_path: Path, args: list[str],
                                             message: str) -> None:
    result = CliRunner().invoke(worker_command, ["--db", str(tmp_path / "q.db"), *args],
                                env={"PQ_QUEUE": None, "PQ_QUEUES": None})
    assert result.exit_code == 2 and message in result.output


def test_a_typed_queues_flag_beats_pq_queue_from_the_environment(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    with Queue(db) as q:
        q.enqueue("b", 1)
    result = CliRunner().invoke(
        worker_command, ["--db", str(db), "--queues", "a,b", "--max-jobs", "1", "--wait", "0.2",
                         "--log-dir", ""], env={"PQ_QUEUE": "elsewhere"})
    assert result.exit_code == 0, result.output
    with Queue(db) as q:
        assert [w.queues for w in q.workers()] == [["a", "b"]]
