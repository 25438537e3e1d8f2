"""The django.tasks backend (persistent_queue.contrib.django) with the test project under
tests/django_project: tasks enqueued here through django.tasks, run by a real
``python manage.py pq_worker`` process, their results read back with ``get_result``.

On Python 3.11 this is Django 5.2 with the django-tasks backport (the test dependencies);
tests/e2e/test_django_processes.py runs the same scenario under Django 6 on Python 3.12.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import InvalidArgument, InvalidPayload, InvalidQueueName, Queue
from tests.support import ROOT

pytest.importorskip("django")
PROJECT = ROOT / "tests" / "django_project"
sys.path.insert(0, str(PROJECT))
os.environ["DJANGO_SETTINGS_MODULE"] = "djproject.settings"

import django  # noqa: E402

django.setup()
# The settings are loaded: other tests' processes (the docs' sessions) must not inherit them.
del os.environ["DJANGO_SETTINGS_MODULE"]

from django.test import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402
from shop.tasks import (  # noqa: E402
    ShopError,
    add,
    async_add,
    async_fail,
    async_where,
    async_with_context,
    fail,
    send_email,
    with_context,
)

from persistent_queue.contrib.django import Backend  # noqa: E402
from persistent_queue.contrib.django.backend import close_queues  # noqa: E402
from persistent_queue.contrib.django.compat import (  # noqa: E402
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
)

pytestmark = [pytest.mark.slow]


def tasks_setting(db: str, **options: Any) -> dict[str, Any]:
    return {"default": {"BACKEND": "persistent_queue.contrib.django.Backend",
                        "QUEUES": ["default", "emails"],
                        "OPTIONS": {"db": db, "durability": "normal", **options}}}


@pytest.fixture
def db(db_url: str) -> Iterator[str]:
    """The test's database as the project's task backend (both storage backends)."""
    with override_settings(TASKS=tasks_setting(db_url)):
        yield db_url
    close_queues()


def run_worker(db: str, *flags: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """``python manage.py pq_worker`` on ``db`` until it exits (``--max-jobs`` in flags)."""
    env = dict(os.environ, PQ_DJANGO_DB=db, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run([sys.executable, "manage.py", "pq_worker", "--wait", "0.2", *flags],
                          cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_a_worker_process_runs_tasks_and_get_result_reports_them(db: str) -> None:
    ok = add.enqueue(2, 3)
    boom = fail.enqueue("boom")
    email = send_email.enqueue("a@b.c")
    context = with_context.enqueue("x")
    coroutine = asyncio.run(async_add.aenqueue(20, 22))
    assert ok.status == TaskResultStatus.READY and ok.enqueued_at is not None
    assert add.get_result(ok.id).status == TaskResultStatus.READY
    assert ok.args == [2, 3] and ok.backend == "default" and ok.attempts == 0

    worker = run_worker(db, "--queues", "default,emails", "--max-jobs", "5")
    assert worker.returncode == 0, worker.stdout + worker.stderr

    done = add.get_result(ok.id)
    assert done.status == TaskResultStatus.SUCCESSFUL and done.return_value == 5
    assert done.attempts == 1 and done.errors == [] and len(done.worker_ids) == 1
    assert done.enqueued_at <= done.started_at <= done.finished_at
    assert done.last_attempted_at == done.started_at
    assert send_email.get_result(email.id).return_value == {"sent": "a@b.c"}
    assert email.task.queue_name == "emails"
    assert async_add.get_result(coroutine.id).return_value == 42
    assert with_context.get_result(context.id).return_value == {
        "label": "x", "attempt": 1, "id": context.id}

    failed = fail.get_result(boom.id)
    assert failed.status == TaskResultStatus.FAILED and failed.finished_at is not None
    [error] = failed.errors
    assert error.exception_class is ShopError
    assert "boom" in error.traceback and "raise ShopError(message)" in error.traceback
    with pytest.raises(ValueError, match="failed"):
        _ = failed.return_value

    refreshed = asyncio.run(add.aget_result(ok.id))
    assert refreshed.return_value == 5
    ok.refresh()
    assert ok.status == TaskResultStatus.SUCCESSFUL and ok.return_value == 5


def test_async_tasks_run_together_on_the_workers_event_loop(db: str) -> None:
    naps = [async_where.enqueue(1.0) for _ in range(20)]
    boom = async_fail.enqueue("async boom")
    context = async_with_context.enqueue("y")
    worker = run_worker(db, "--max-jobs", "22", "--concurrency", "20")
    assert worker.returncode == 0, worker.stdout + worker.stderr

    results = [async_where.get_result(r.id) for r in naps]
    assert {r.return_value for r in results} == {"pq-event-loop"}
    span = max(r.finished_at for r in results) - min(r.started_at for r in results)
    assert span.total_seconds() < 10, f"20 one-second naps took {span} (not at once)"
    failed = async_fail.get_result(boom.id)
    assert failed.status == TaskResultStatus.FAILED
    assert [e.exception_class for e in failed.errors] == [ShopError]
    assert "async boom" in failed.errors[0].traceback
    assert async_with_context.get_result(context.id).return_value == {
        "label": "y", "attempt": 1, "id": context.id}


def test_priority_and_run_after_decide_the_order(db: str) -> None:
    run_after = timezone.now() + timedelta(seconds=1.5)
    deferred = add.using(run_after=run_after).enqueue(0, 0)
    low = add.using(priority=-100).enqueue(1, 1)
    middle = add.enqueue(2, 2)
    high = add.using(priority=100).enqueue(3, 3)
    assert deferred.task.run_after == run_after

    worker = run_worker(db, "--max-jobs", "4", "--concurrency", "1")
    assert worker.returncode == 0, worker.stdout + worker.stderr

    results = [add.get_result(r.id) for r in (high, middle, low, deferred)]
    assert [r.status for r in results] == [TaskResultStatus.SUCCESSFUL] * 4
    started = [r.started_at for r in results[:3]]
    assert started == sorted(started), "high, then middle, then low"
    assert results[3].started_at >= run_after
    assert results[3].task.run_after == run_after
    assert [r.task.priority for r in results[:3]] == [100, 0, -100]


def test_more_attempts_make_a_failed_task_ready_again(db: str) -> None:
    with override_settings(TASKS=tasks_setting(db, max_attempts=2)):
        boom = fail.enqueue("once")
        worker = run_worker(db, "--max-jobs", "1")
        assert worker.returncode == 0, worker.stdout + worker.stderr
        retried = fail.get_result(boom.id)
        assert retried.status == TaskResultStatus.READY and retried.attempts == 1
        assert [e.exception_class for e in retried.errors] == [ShopError]


def test_bad_input_is_refused_with_a_specific_error(db: str) -> None:
    with pytest.raises(InvalidTask, match="Queue 'nowhere'"):
        add.using(queue_name="nowhere").enqueue(1, 2)
    with pytest.raises(InvalidPayload):
        add.enqueue(object(), 1)
    for unknown in ("nope", "0", "-3", "999", str(2**70), ""):
        with pytest.raises(TaskResultDoesNotExist):
            add.get_backend().get_result(unknown)
    with pytest.raises(TaskResultDoesNotExist):
        asyncio.run(add.get_backend().aget_result("999"))
    raw = Queue(db).enqueue("default", {"not": "a task"})
    with pytest.raises(TaskResultDoesNotExist):
        add.get_backend().get_result(str(raw.id))
    assert Queue(db).stats("default").ready == 1  # nothing stored by the refused enqueues


@pytest.mark.parametrize("options, message", [
    ({"bogus": 1}, "unknown OPTIONS"),
    ({"durability": "sometimes"}, "durability"),
    ({"max_attempts": 0}, "max_attempts"),
])
def test_bad_options_are_refused(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        Backend("default", {"OPTIONS": {"db": str(tmp_path / "q.db"), **options}})


def test_a_bad_queue_name_is_refused() -> None:
    with pytest.raises(InvalidQueueName):
        Backend("default", {"QUEUES": ["bad name!"]})


def test_a_job_without_a_task_fails_in_the_django_worker(db: str) -> None:
    q = Queue(db)
    raw = q.enqueue("default", {"not": "a task"}, max_attempts=1)
    gone = q.enqueue("default", {"task": "django:shop.tasks.missing", "args": [],
                                 "kwargs": {}}, headers={"task": "django:shop.tasks.missing"},
                     max_attempts=1)
    worker = run_worker(db, "--max-jobs", "2")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert "not a django task job" in (q.get_job(raw.id).last_error or "")
    assert "unknown task 'django:shop.tasks.missing'" in (q.get_job(gone.id).last_error or "")
    with pytest.raises(TaskResultDoesNotExist):
        add.get_backend().get_result(str(gone.id))


def test_the_status_follows_the_job(db: str) -> None:
    q = Queue(db)
    running = add.enqueue(1, 2)
    claimed = q.dequeue("default", visibility_timeout=60, worker="web-1")
    assert claimed is not None and str(claimed.id) == running.id
    now = add.get_result(running.id)
    assert now.status == TaskResultStatus.RUNNING and now.worker_ids == ["web-1"]
    assert now.started_at is not None and now.finished_at is None
    with pytest.raises(ValueError, match="not finished"):
        _ = now.return_value
    q.ack(claimed, result=3)
    assert add.get_result(running.id).return_value == 3

    cancelled = add.enqueue(5, 5)
    q.cancel(int(cancelled.id), reason="not needed")
    gone = add.get_result(cancelled.id)
    assert gone.status == TaskResultStatus.FAILED and gone.finished_at is not None
    assert gone.errors == [] and gone.attempts == 0


def test_pq_worker_without_queues_to_consume_says_so(tmp_path: Path) -> None:
    settings = tmp_path / "noqueues.py"
    settings.write_text("from djproject.settings import *  # noqa\n"
                        "TASKS['default']['QUEUES'] = []\n")
    env = dict(os.environ, PQ_DJANGO_DB=str(tmp_path / "q.db"),
               DJANGO_SETTINGS_MODULE="noqueues",
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    run = subprocess.run([sys.executable, "manage.py", "pq_worker"], cwd=PROJECT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "lists no QUEUES" in run.stderr, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
