"""``pq jobs cancel | delete | retry | history``, what ``pq jobs show`` says of a job's run,
``pq dlq edit`` and ``pq enqueue --timeout``: output, readable errors and exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from persistent_queue import JobNotFound, JobState, Queue, config
from persistent_queue.cli import EXIT_FAILED, EXIT_USAGE

Pq = Callable[..., Result]



@pytest.fixture
def q(db_path: Path | str) -> Iterator[Queue]:
    opened = Queue(db_path, durability="normal")
    yield opened
    opened.close()


def failed(result: Result, code: int, message: str) -> None:
    """The command exited with ``code`` and said ``error: message``, without a traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit)
    assert f"error: {message}" in result.output
    assert "Traceback" not in result.output


def test_cancel_a_queued_job_then_a_running_one(pq: Pq, q: Queue) -> None:
    queued = q.enqueue("reports", 1)
    result = pq("jobs", "cancel", str(queued.id), "--reason", "wrong day")
    assert result.exit_code == 0, result.output
    assert result.output == f"job {queued.id} cancelled\n"
    stored = q.get_job(queued.id)
    assert stored.state is JobState.CANCELLED and stored.cancel_reason == "wrong day"

    running = q.enqueue("reports", 2)
    claimed = q.dequeue("reports", worker="worker-7")
    assert claimed is not None and claimed.id == running.id
    result = pq("jobs", "cancel", str(running.id))
    assert result.exit_code == 0, result.output
    assert result.output == (f"job {running.id} is running: cancellation requested; its "
                             "worker (worker-7) stops it and it ends cancelled\n")
    assert q.get_job(running.id).cancel_requested


def test_cancel_refuses_a_finished_or_unknown_job(pq: Pq, q: Queue) -> None:
    job = q.enqueue("reports", 1)
    q.cancel(job.id)
    failed(pq("jobs", "cancel", str(job.id)), EXIT_FAILED,
           f"job {job.id} is cancelled: only an unfinished job can be cancelled")
    failed(pq("jobs", "cancel", "999"), EXIT_FAILED, "no job with id 999")
    failed(pq("jobs", "cancel", "0"), EXIT_USAGE, "job id must be between 1 and")
    other = q.enqueue("reports", 2)
    assert pq("jobs", "cancel", str(other.id), "--reason", "x" * 2000).exit_code == 0
    assert q.get_job(other.id).cancel_reason == "x" * (config.MAX_REASON_CHARS - 3) + "..."


def test_delete_a_job_but_not_a_running_one(pq: Pq, q: Queue) -> None:
    job = q.enqueue("reports", 1)
    result = pq("jobs", "delete", str(job.id))
    assert (result.exit_code, result.output) == (0, f"job {job.id} deleted\n")
    with pytest.raises(JobNotFound):
        q.get_job(job.id)
    failed(pq("jobs", "delete", str(job.id)), EXIT_FAILED, f"no job with id {job.id}")
    running = q.enqueue("reports", 2)
    assert q.dequeue("reports") is not None
    failed(pq("jobs", "delete", str(running.id)), EXIT_FAILED,
           f"job {running.id} is leased by a consumer: cancel it first")


def test_retry_a_delayed_job_now(pq: Pq, q: Queue) -> None:
    job = q.enqueue("reports", 1, delay=3600)
    assert q.dequeue("reports") is None
    result = pq("jobs", "retry", str(job.id))
    assert (result.exit_code, result.output) == (0, f"job {job.id} is ready to run now\n")
    failed(pq("jobs", "retry", str(job.id)), EXIT_FAILED,
           f"job {job.id} is already claimable: it is neither delayed nor backing off")
    claimed = q.dequeue("reports")
    assert claimed is not None and claimed.id == job.id


def test_show_and_history_say_who_ran_each_attempt_for_how_long(pq: Pq, q: Queue) -> None:
    job = q.enqueue("reports", {"day": "mon"}, timeout=120)
    first = q.dequeue("reports", worker="worker-1")
    assert first is not None
    q.nack(first, error="disk full\nmore lines", delay=0)
    second = q.dequeue("reports", worker="worker-2")
    assert second is not None
    q.set_progress(second, 0.5, "half way")
    running = json.loads(pq("jobs", "show", str(job.id)).output)
    assert running["progress"] == {"fraction": 0.5, "message": "half way"}
    assert (running["claimed_by"], running["timeout"], running["run_time"]) == (
        "worker-2", 120, None)
    q.ack(second)
    shown = json.loads(pq("jobs", "show", str(job.id)).output)
    assert shown["state"] == "done" and shown["run_time"] >= 0
    assert [(e["event"], e["worker"]) for e in shown["history"]] == [
        ("enqueued", None), ("claimed", "worker-1"), ("failed", "worker-1"),
        ("claimed", "worker-2"), ("acked", "worker-2")]

    lines = pq("jobs", "history", str(job.id)).output.splitlines()
    assert lines[0].split() == ["at", "event", "attempt", "worker", "run_time", "detail"]
    rows = [line.split() for line in lines[1:]]
    assert [(r[2], r[3], r[4]) for r in rows] == [
        ("enqueued", "0", "-"), ("claimed", "1", "worker-1"), ("failed", "1", "worker-1"),
        ("claimed", "2", "worker-2"), ("acked", "2", "worker-2")]
    assert rows[2][5].endswith("s") and rows[2][6:] == ["disk", "full"]  # first line only
    as_json = json.loads(pq("jobs", "history", str(job.id), "--json").output)
    assert as_json == shown["history"]
    failed(pq("jobs", "history", "999"), EXIT_FAILED, "no job with id 999")


def test_dlq_edit_changes_a_dead_letter_before_its_redrive(pq: Pq, q: Queue) -> None:
    job = q.enqueue("hooks", {"url": "http://a.example"}, max_attempts=1,
                    headers={"tenant": "acme"})
    claimed = q.dequeue("hooks")
    assert claimed is not None
    q.nack(claimed, error="HTTP 410")
    result = pq("dlq", "edit", str(job.id), "--payload", '{"url": "http://b.example"}',
                "--priority", "5")
    assert result.exit_code == 0, result.output
    edited = json.loads(result.output)
    assert edited["payload"] == {"url": "http://b.example"} and edited["priority"] == 5
    assert edited["headers"] == {"tenant": "acme"}
    cleared = json.loads(pq("dlq", "edit", str(job.id), "--headers", "null").output)
    assert cleared["headers"] == {}
    assert pq("dlq", "redrive", str(job.id)).exit_code == 0
    again = q.dequeue("hooks")
    assert again is not None
    assert (again.payload, again.priority, again.headers) == (
        {"url": "http://b.example"}, 5, {})


def test_dlq_edit_refuses_bad_input_readably(pq: Pq, q: Queue) -> None:
    job = q.enqueue("hooks", 1, max_attempts=1)
    claimed = q.dequeue("hooks")
    assert claimed is not None
    q.nack(claimed)
    failed(pq("dlq", "edit", str(job.id)), EXIT_USAGE,
           "give at least one of --payload, --headers, --priority")
    failed(pq("dlq", "edit", str(job.id), "--headers", "[1]"), EXIT_USAGE,
           "--headers must be a JSON object (or null), not list")
    failed(pq("dlq", "edit", str(job.id), "--headers", "{oops"), EXIT_USAGE,
           "--headers must be a JSON object (or null), not '{oops'")
    failed(pq("dlq", "edit", str(job.id), "--payload", "NaN"), EXIT_USAGE,
           "payload holds nan, which JSON cannot represent")
    failed(pq("dlq", "edit", str(job.id), "--priority", str(2**40)), EXIT_USAGE, "priority")
    assert q.dead_letters()[0].payload == 1
    live = q.enqueue("hooks", 2)
    failed(pq("dlq", "edit", str(live.id), "--payload", "3"), EXIT_FAILED,
           f"job {live.id} is not dead-lettered; only a dead letter can be edited")


def test_enqueue_takes_a_timeout(pq: Pq, q: Queue) -> None:
    made = pq("enqueue", "reports", "{}", "--timeout", "90")
    assert made.exit_code == 0, made.output
    assert q.get_job(json.loads(made.output)["id"]).timeout == 90
    failed(pq("enqueue", "reports", "{}", "--timeout", "0"), EXIT_USAGE,
           "timeout must be positive")
    assert pq("enqueue", "reports", "{}", "--timeout", "soon").exit_code == EXIT_USAGE
    assert len(q.list_jobs("reports")) == 1
