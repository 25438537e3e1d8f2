"""The worker's control of running jobs, in-process with the thread executor: timeouts,
cancellation (before and while a handler runs), the slot of an abandoned handler."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from persistent_queue import Job, JobState, Queue, current_job
from persistent_queue.worker import EXIT_OK, Worker, WorkerConfig
from tests.support import wait_for


def start(q: Queue, handler: object, **settings: object) -> tuple[Worker, threading.Thread]:
    config = WorkerConfig(queue="work", log_dir=None, wait=0.2, **settings)  # type: ignore[arg-type]
    worker = Worker(q, config, handler, q.tasks)  # type: ignore[arg-type]
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(worker.run()), daemon=True)
    thread.start()
    worker.exit_codes = codes  # type: ignore[attr-defined]
    return worker, thread


def stop(worker: Worker, thread: threading.Thread) -> int:
    worker.request_stop()
    thread.join(30)
    assert not thread.is_alive()
    return worker.exit_codes[0]  # type: ignore[attr-defined]


def test_a_handler_past_its_timeout_fails_and_its_slot_runs_the_next_job(
        real_queue: Queue, caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    ran: list[int] = []

    def handler(job: Job) -> None:
        ran.append(job.id)
        if job.payload == "hang":
            release.wait(60)

    stuck = real_queue.enqueue("work", "hang", timeout=0.5, max_attempts=1)
    after = real_queue.enqueue("work", "quick")
    with caplog.at_level("WARNING", logger="persistent_queue.worker"):
        worker, thread = start(real_queue, handler, concurrency=1)
        dead = wait_for(lambda: next(iter(real_queue.dead_letters("work")), None), timeout=20,
                        message="the timed-out job's dead letter")
        assert dead.id == stuck.id and dead.last_error == "timed out after 0.5 s"
        wait_for(lambda: real_queue.get_job(after.id).state is JobState.DONE, timeout=20,
                 message="the next job, on the slot's new thread")
        release.set()  # the abandoned handler returns: its outcome is discarded
        wait_for(lambda: "abandoned handler of job" in caplog.text, timeout=20,
                 message="the abandoned handler's return")
    assert stop(worker, thread) == EXIT_OK
    assert ran == [stuck.id, after.id]
    assert "still running after its timeout" in caplog.text


def test_a_cooperative_task_stops_when_cancelled(real_queue: Queue) -> None:
    started = threading.Event()

    @real_queue.task(queue="work", name="loop")
    def loop() -> None:
        job = current_job()
        started.set()
        for i in range(100_000):
            job.set_progress(min(i / 1000, 1.0), message=f"step {i}")
            job.raise_if_cancelled()
            threading.Event().wait(0.01)

    handle = loop.delay()
    worker, thread = start(real_queue, lambda job: None)
    assert started.wait(20)
    real_queue.cancel(handle.id, reason="not needed")
    job = wait_for(lambda: (j := real_queue.get_job(handle.id)).state is JobState.CANCELLED
                   and j, timeout=20, message="the job cancelled")
    assert job.cancel_reason == "not needed" and job.claimed_by == worker.id
    assert stop(worker, thread) == EXIT_OK


def test_a_task_that_ignores_cancellation_is_cancelled_after_the_grace_period(
        real_queue: Queue) -> None:
    release = threading.Event()
    started = threading.Event()

    @real_queue.task(queue="work", name="deaf")
    def deaf() -> str:
        started.set()
        release.wait(60)
        return "finished anyway"

    handle = deaf.delay()
    worker, thread = start(real_queue, lambda job: None, cancel_grace=0.5)
    assert started.wait(20)
    real_queue.cancel(handle.id)
    wait_for(lambda: real_queue.get_job(handle.id).state is JobState.CANCELLED, timeout=20,
             message="the job cancelled after the grace period")
    release.set()  # its late result changes nothing
    wait_for(lambda: worker.idle, timeout=20, message="the worker idle again")
    job = real_queue.get_job(handle.id)
    assert job.state is JobState.CANCELLED and job.result is None
    assert stop(worker, thread) == EXIT_OK


def test_a_worker_records_who_ran_each_attempt_and_for_how_long(real_queue: Queue) -> None:
    job = real_queue.enqueue("work", 1)
    worker, thread = start(real_queue, lambda j: None, worker_id="w-1")
    wait_for(lambda: real_queue.get_job(job.id).state is JobState.DONE, timeout=20,
             message="the job done")
    assert stop(worker, thread) == EXIT_OK
    done = real_queue.get_job(job.id)
    assert done.claimed_by == "w-1" and done.run_time is not None and done.run_time >= 0
    events = [(e.event, e.worker) for e in real_queue.history(job.id)]
    assert events == [("enqueued", None), ("claimed", "w-1"), ("acked", "w-1")]


def test_bad_executor_settings_are_refused(tmp_path: Path) -> None:
    from persistent_queue import InvalidArgument

    with pytest.raises(InvalidArgument, match="executor"):
        WorkerConfig(queue="work", executor="fork")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        WorkerConfig(queue="work", max_tasks_per_child=0)
    with pytest.raises(InvalidArgument):
        WorkerConfig(queue="work", cancel_grace=-1)


@pytest.mark.sqlite_only  # the rule is the backend's core; the handler's transaction is SQLite's
def test_a_handler_that_acks_in_its_own_transaction_counts_as_acked(
        real_queue: Queue, db_path: Path | str, caplog: pytest.LogCaptureFixture) -> None:
    """``q.ack(job, connection=conn)`` in the handler: the worker's own ack then finds the job
    done by this very attempt, and says acked, not "lease lost"."""
    import sqlite3

    conn = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE sent (job_id INTEGER PRIMARY KEY)")

    def handler(job: Job) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO sent VALUES (?)", (job.id,))
        real_queue.ack(job, connection=conn)
        conn.execute("COMMIT")

    job = real_queue.enqueue("work", 1)
    with caplog.at_level("WARNING", logger="persistent_queue.worker"):
        worker, thread = start(real_queue, handler, max_jobs=1)
        thread.join(30)
    assert worker.exit_codes == [EXIT_OK]  # type: ignore[attr-defined]
    assert worker.processed == 1 and worker.failed == 0
    assert "not recorded" not in caplog.text
    assert real_queue.get_job(job.id).state is JobState.DONE
    assert conn.execute("SELECT job_id FROM sent").fetchall() == [(job.id,)]
    conn.close()
