"""``pq jobs show`` names a job's task and shows its result; ``pq result ID [--wait S]``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from persistent_queue import Queue
from persistent_queue.cli import EXIT_EMPTY, EXIT_FAILED

Pq = Callable[..., Result]



@pytest.fixture
def app(db_path: Path) -> Queue:
    q = Queue(db_path, durability="normal")

    @q.task(queue="emails", name="send")
    def send(to: str) -> dict[str, str]:
        return {"sent": to}

    return q


def finish(q: Queue, result: object) -> None:
    job = q.dequeue("emails")
    assert job is not None
    q.ack(job, result=result)


def test_jobs_show_names_the_task_and_prints_the_result(pq: Pq, app: Queue) -> None:
    handle = app.tasks.get("send").delay("a@b.c")
    shown = json.loads(pq("jobs", "show", str(handle.id)).output)
    assert shown["task"] == "send" and shown["result"] is None
    finish(app, {"sent": "a@b.c"})
    shown = json.loads(pq("jobs", "show", str(handle.id)).output)
    assert shown["state"] == "done" and shown["result"] == {"sent": "a@b.c"}
    raw = app.enqueue("emails", "plain")
    assert json.loads(pq("jobs", "show", str(raw.id)).output)["task"] is None
    app.close()


def test_pq_result_prints_the_result_as_json(pq: Pq, app: Queue) -> None:
    handle = app.tasks.get("send").delay("a@b.c")
    finish(app, {"sent": "a@b.c"})
    done = pq("result", str(handle.id), "--wait", "5")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == {"sent": "a@b.c"}
    app.close()


def test_pq_result_of_an_unfinished_job_exits_3(pq: Pq, app: Queue) -> None:
    handle = app.tasks.get("send").delay("a@b.c")
    pending = pq("result", str(handle.id), "--wait", "0.1")
    assert pending.exit_code == EXIT_EMPTY
    assert "is ready, not done" in pending.output
    app.close()


def test_pq_result_of_a_failed_task_exits_1_with_its_error(pq: Pq, app: Queue) -> None:
    handle = app.tasks.get("send").options(max_attempts=1).delay("a@b.c")
    job = app.dequeue("emails")
    assert job is not None
    app.nack(job, error="SMTP said no")
    failed = pq("result", str(handle.id))
    assert failed.exit_code == EXIT_FAILED
    assert "SMTP said no" in failed.output
    assert pq("result", "999").exit_code == EXIT_FAILED
    app.close()
