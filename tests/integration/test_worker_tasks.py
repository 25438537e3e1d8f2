"""The worker's routing in-process: task jobs to their task, other jobs to the handler."""

from __future__ import annotations

import pytest

from persistent_queue import Job, JobState, Queue, current_job
from persistent_queue.worker import EXIT_OK, Worker, WorkerConfig, load_app


def run(q: Queue, *, tasks: bool = True, max_jobs: int = 1,
        handled: list[Job] | None = None) -> Worker:
    seen = handled if handled is not None else []
    settings = WorkerConfig(queues=("work",), log_dir=None, wait=0.2, max_jobs=max_jobs,
                            worker_id="w-1")
    worker = Worker(q, settings, seen.append, q.tasks if tasks else None)
    assert worker.run() == EXIT_OK
    return worker


def test_a_task_job_runs_its_task_and_stores_the_result(real_queue: Queue) -> None:
    @real_queue.task(queue="work", name="double")
    def double(n: int) -> dict[str, int]:
        return {"n": n, "double": 2 * n, "job": current_job().id}

    handle = double.delay(21)
    handled: list[Job] = []
    run(real_queue, handled=handled)
    assert handle.result(timeout=5) == {"n": 21, "double": 42, "job": handle.id}
    assert handled == []


def test_a_raw_job_goes_to_the_handler_without_a_result(real_queue: Queue) -> None:
    job = real_queue.enqueue("work", {"to": "a@b.c"})
    handled: list[Job] = []
    run(real_queue, handled=handled)
    assert [j.id for j in handled] == [job.id]
    stored = real_queue.get_job(job.id)
    assert stored.state is JobState.DONE and stored.result is None


def test_a_result_that_is_not_json_fails_the_attempt(real_queue: Queue) -> None:
    @real_queue.task(queue="work", name="opaque")
    def opaque() -> object:
        return object()

    handle = opaque.delay()
    run(real_queue)
    stored = real_queue.get_job(handle.id)
    assert stored.state is JobState.READY and stored.attempts == 1
    assert stored.last_error is not None and "task result" in stored.last_error


def test_without_an_app_a_task_job_is_an_unknown_task(real_queue: Queue) -> None:
    @real_queue.task(queue="work", name="known_elsewhere", max_attempts=1)
    def known_elsewhere() -> int:
        return 1

    handle = known_elsewhere.delay()
    handled: list[Job] = []
    run(real_queue, tasks=False, handled=handled)
    assert handled == []  # never handed to the handler as a raw job
    (dead,) = real_queue.dead_letters()
    assert dead.id == handle.id and dead.reason == "unknown task 'known_elsewhere'"
    assert dead.last_error == "unknown task 'known_elsewhere' (worker w-1 does not have it)"


def test_an_unknown_task_is_retried_before_its_last_attempt(real_queue: Queue) -> None:
    job = real_queue.enqueue("work", {"task": "gone", "args": [], "kwargs": {}},
                             headers={"task": "gone"}, max_attempts=3)
    run(real_queue)
    stored = real_queue.get_job(job.id)
    assert stored.state is JobState.READY and stored.attempts == 1  # another worker may have it
    assert stored.last_error == "unknown task 'gone' (worker w-1 does not have it)"


@pytest.mark.parametrize("spec, message", [
    ("nocolon", "must look like 'module:attr'"),
    ("json:dumps", "not a Queue"),
    ("no_such_module_xyz:q", "cannot import app module"),
])
def test_bad_app_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_app(spec)
