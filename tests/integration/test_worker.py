"""The worker loop in-process: settling results, heartbeats, lost leases, stopping, job logs."""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import pytest

from persistent_queue import Job, JobState, Queue, Retry
from persistent_queue.worker import EXIT_OK, Worker, WorkerConfig, load_handler
from tests.support import wait_for


def run_worker(q: Queue, handler: object, tmp_path: Path, *, max_jobs: int = 1,
               **settings: object) -> Worker:
    config = WorkerConfig(queue="work", max_jobs=max_jobs, log_dir=str(tmp_path / "logs"),
                          wait=0.2, **settings)  # type: ignore[arg-type]
    worker = Worker(q, config, handler)  # type: ignore[arg-type]
    assert worker.run() == EXIT_OK
    return worker


def test_a_returning_handler_acks_and_logs_a_csv_row(real_queue: Queue, tmp_path: Path) -> None:
    job = real_queue.enqueue("work", {"n": 1})
    seen: list[Job] = []
    worker = run_worker(real_queue, seen.append, tmp_path)
    assert [j.id for j in seen] == [job.id]
    assert real_queue.get_job(job.id).state is JobState.DONE
    rows = list(csv.DictReader((tmp_path / "logs" / "processed_log.csv").open()))
    assert rows[0]["job_id"] == str(job.id) and rows[0]["result"] == "acked"
    assert rows[0]["worker"] == worker.id
    registered = {w.id: w for w in real_queue.workers()}[worker.id]
    assert registered.state == "stopped" and registered.processed == 1


def test_an_ack_is_logged_at_debug_and_a_failure_at_warning(
        real_queue: Queue, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def fail_second(job: Job) -> None:
        if job.payload == 2:
            raise ValueError("boom")

    ok, bad = real_queue.enqueue("work", 1), real_queue.enqueue("work", 2)
    with caplog.at_level("DEBUG", logger="persistent_queue.worker"):
        run_worker(real_queue, fail_second, tmp_path, max_jobs=2)
    levels = {(r.job_id, r.result): r.levelname for r in caplog.records  # type: ignore[attr-defined]
              if getattr(r, "result", None) is not None}
    assert levels == {(ok.id, "acked"): "DEBUG", (bad.id, "failed"): "WARNING"}


def test_an_exception_nacks_with_the_traceback(real_queue: Queue, tmp_path: Path) -> None:
    job = real_queue.enqueue("work", 1)

    def broken(job: Job) -> None:
        raise KeyError("missing field")

    run_worker(real_queue, broken, tmp_path)
    stored = real_queue.get_job(job.id)
    assert stored.state is JobState.READY and stored.attempts == 1
    assert stored.last_error is not None
    assert stored.last_error.startswith("KeyError: 'missing field'")
    assert "Traceback (most recent call last)" in stored.last_error
    assert "in broken" in (tmp_path / "logs" / "error_log.txt").read_text()


def test_retry_asks_for_its_own_delay(real_queue: Queue, tmp_path: Path) -> None:
    job = real_queue.enqueue("work", 1)

    def later(job: Job) -> None:
        raise Retry(delay=120, reason="rate limited")

    before = time.time()
    run_worker(real_queue, later, tmp_path)
    stored = real_queue.get_job(job.id)
    assert stored.state is JobState.READY
    assert before + 119 <= stored.available_at <= time.time() + 121
    assert stored.last_error == "Retry: rate limited"


def test_heartbeats_keep_a_long_job_leased(real_queue: Queue, tmp_path: Path) -> None:
    job = real_queue.enqueue("work", 1)
    # Three leases long; a heartbeat every third of a lease leaves a stalled commit 1 s.
    run_worker(real_queue, lambda job: time.sleep(4.5), tmp_path, visibility_timeout=1.5)
    stored = real_queue.get_job(job.id)
    assert stored.state is JobState.DONE and stored.attempts == 1
    assert [e.event for e in real_queue.history(job.id)] == ["enqueued", "claimed", "acked"]


def test_a_lost_lease_is_not_acked(real_queue: Queue, tmp_path: Path, db_path: Path) -> None:
    job = real_queue.enqueue("work", 1)
    other = Queue(db_path)
    thief: list[Job] = []

    def stolen(job: Job) -> None:  # the lease moves to another consumer while this one runs
        other.requeue(job)
        claimed = other.dequeue("work")
        assert claimed is not None
        thief.append(claimed)

    run_worker(real_queue, stolen, tmp_path)
    stored = real_queue.get_job(job.id)
    assert stored.state is JobState.LEASED  # still the thief's, not acked by the loser
    other.ack(thief[0])
    other.close()
    rows = list(csv.DictReader((tmp_path / "logs" / "processed_log.csv").open()))
    assert rows[0]["result"] == "lease_lost"


def test_warm_stop_finishes_the_job_in_hand(real_queue: Queue, tmp_path: Path) -> None:
    job = real_queue.enqueue("work", 1)
    started, release = threading.Event(), threading.Event()

    def slow(job: Job) -> None:
        started.set()
        release.wait(30)

    worker = Worker(real_queue, WorkerConfig(queue="work", log_dir=None, wait=0.2), slow)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(worker.run()))
    thread.start()
    assert started.wait(30)
    worker.request_stop()
    wait_for(lambda: worker.draining or not thread.is_alive(), message="the stop to be taken")
    assert thread.is_alive()  # claiming stopped; it waits for the job in hand
    assert real_queue.get_job(job.id).state is JobState.LEASED
    release.set()
    thread.join(30)
    assert result == [EXIT_OK]
    stored = real_queue.get_job(job.id)
    assert stored.state is JobState.DONE and stored.attempts == 1


def test_idle_worker_starts_a_new_job_quickly(real_queue: Queue, tmp_path: Path) -> None:
    started: list[float] = []
    # The worker reads as idle once its first claim (a wait of 5 s) has found nothing.
    worker = Worker(real_queue, WorkerConfig(queue="work", log_dir=None, wait=5.0, max_jobs=1),
                    lambda job: started.append(time.monotonic()))
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: worker.idle, message="a claim to find nothing")  # now in its next wait
        enqueued = time.monotonic()
        real_queue.enqueue("work", 1)
        wait_for(lambda: started, timeout=30, message="the job to start")
        # Milliseconds: the commit wakes the wait. A wait that ran its course would take ~5 s.
        assert started[0] - enqueued < 4
    finally:
        worker.request_stop()
        thread.join(30)


@pytest.mark.parametrize(
    "spec", ["nocolon", "no_such_module_xyz:f", "json:no_such", "json:__doc__"])
def test_bad_handler_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        load_handler(spec)


def test_heartbeat_notices_a_stolen_lease_while_the_job_runs(
        real_queue: Queue, tmp_path: Path, db_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    job = real_queue.enqueue("work", 1)
    other = Queue(db_path)

    def stolen_then_slow(job: Job) -> None:  # runs on until a heartbeat finds the lease gone
        other.requeue(job)
        assert other.dequeue("work") is not None
        wait_for(lambda: "lost the lease" in caplog.text, timeout=15, message="the heartbeat")

    with caplog.at_level("WARNING", logger="persistent_queue.worker"):
        run_worker(real_queue, stolen_then_slow, tmp_path, visibility_timeout=0.3)
    other.close()
    assert f"lost the lease of job {job.id} while it ran" in caplog.text
    assert real_queue.get_job(job.id).state is JobState.LEASED  # the thief's, not done


def test_a_running_worker_gone_idle_writes_its_csv_rows(real_queue: Queue,
                                                          tmp_path: Path) -> None:
    job = real_queue.enqueue("work", 1)
    worker = Worker(real_queue, WorkerConfig(queue="work", log_dir=str(tmp_path / "logs"),
                                             wait=0.2), lambda job: None)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        # Kept in memory while jobs come, written by the control thread once it is idle.
        wait_for(lambda: str(job.id) in _logged_ids(tmp_path / "logs" / "processed_log.csv"),
                 message="the job's row while the worker runs")
    finally:
        worker.request_stop()
        thread.join(timeout=60)


def _logged_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    with path.open() as handle:
        return [row["job_id"] for row in csv.DictReader(handle)]
