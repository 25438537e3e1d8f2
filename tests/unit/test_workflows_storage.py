"""Workflow storage: every new statement searches an index, the default path is unchanged,
and a schema-1 database migrates in place."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from persistent_queue import JobState, Queue
from persistent_queue.storage.queries import migrations, queries

Q = queries("sqlite")

WORKFLOW_STATEMENTS = [
    "count_occupied", "find_dedup", "lock_live_parents", "waiting_dependents", "dead_dependents",
    "unmet_dependencies", "subscribers", "due_schedules", "next_schedule_at", "get_schedule",
    "advance_schedule", "count_dedup_hit", "count_rejected_full", "make_waiting",
    "restore_waiting", "delete_schedule",
]


def _plan(queue: Queue, statement: str) -> list[str]:
    params = {name: 1 for name in re.findall(r":(\w+)", statement)}
    rows = queue.backend.execute_read(  # type: ignore[attr-defined]
        "EXPLAIN QUERY PLAN " + statement, params)
    return [row[3] for row in rows]


def _assert_indexed(plan: list[str], label: str) -> None:
    for step in plan:
        if step.startswith("SCAN") and not step.startswith("SCAN json_each"):  # ids given
            raise AssertionError(f"{label} scans a table: {plan}")
    assert any(step.startswith("SEARCH") for step in plan), f"{label}: {plan}"


@pytest.mark.sqlite_only
@pytest.mark.parametrize("name", WORKFLOW_STATEMENTS)
def test_workflow_statement_searches_an_index(queue: Queue, name: str) -> None:
    _assert_indexed(_plan(queue, Q[name]), name)


@pytest.mark.sqlite_only
def test_release_trigger_searches_indexes(queue: Queue) -> None:
    text = queue.backend.execute_read(  # type: ignore[attr-defined]
        "SELECT sql FROM sqlite_master WHERE name = 'jobs_release_dependents'")[0][0]
    body = text[text.index("BEGIN") + len("BEGIN"):text.rindex("END")].strip().rstrip(";")
    body = body.replace("NEW.id", ":id").replace("NEW.updated_at", ":now")
    _assert_indexed(_plan(queue, body), "jobs_release_dependents")
    # The WHEN clause runs on every ack: its probe for dependents must be an index search.
    when = text[text.index("WHEN") + len("WHEN"):text.index("BEGIN")]
    probe = when[when.index("EXISTS"):].strip().replace("NEW.id", ":id")
    steps = [step for step in _plan(queue, f"SELECT {probe}") if step != "SCAN CONSTANT ROW"]
    _assert_indexed(steps, "jobs_release_dependents WHEN")
    assert any("job_dependencies_parent" in step for step in steps), steps


def _statements(queue: Queue, action: object) -> list[str]:
    seen: list[str] = []
    conn = queue.backend.dialect.conn()  # type: ignore[attr-defined]
    conn.set_trace_callback(seen.append)
    try:
        action()  # type: ignore[operator]
    finally:
        conn.set_trace_callback(None)
    return [s for s in seen if not s.startswith("-- TRIGGER")]


@pytest.mark.sqlite_only
def test_default_enqueue_costs_no_extra_statement(queue: Queue) -> None:
    queue.enqueue("jobs", 0)  # the queue exists from now on
    seen = _statements(queue, lambda: queue.enqueue("jobs", 1))
    assert len(seen) == 1, seen  # one autocommit statement: no BEGIN, no COMMIT
    assert "INSERT INTO jobs" in seen[0] and "FROM queues WHERE name" in seen[0]
    assert all("dedup" not in s and "job_dependencies" not in s for s in seen)


@pytest.mark.sqlite_only
def test_enqueue_into_a_new_queue_creates_it_in_one_transaction(queue: Queue) -> None:
    seen = _statements(queue, lambda: queue.enqueue("fresh", 1))
    assert "FROM queues WHERE name" in seen[0]  # found no queue: inserted nothing
    assert seen[1] == "BEGIN IMMEDIATE" and seen[-1] == "COMMIT", seen
    assert queue.get_queue("fresh") is not None
    assert [job.payload for job in queue.list_jobs("fresh")] == [1]


@pytest.mark.sqlite_only
def test_ack_is_still_one_statement(queue: Queue) -> None:
    queue.enqueue("jobs", 1)
    claimed = queue.dequeue("jobs")
    assert claimed is not None
    # sqlite3 reports a trigger program under its statement's text: one distinct statement.
    assert len(set(_statements(queue, lambda: queue.ack(claimed)))) == 1


def test_schema_1_database_migrates_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    number, _, script = migrations("sqlite")[0]
    conn.executescript(script)
    conn.execute(f"PRAGMA user_version = {number}")
    conn.execute("INSERT INTO queues (name, max_attempts, visibility_timeout, created_at, "
                 "updated_at) VALUES ('old', 3, 30, 0, 0)")
    conn.execute("INSERT INTO jobs (queue, state, payload, available_at, created_at, updated_at)"
                 " VALUES ('old', 'ready', '7', 0, 0, 0)")
    conn.commit()
    conn.close()
    with Queue(path, durability="normal") as q:
        assert q.schema_version() == len(migrations("sqlite"))
        job = q.get_job(1)
        assert job.payload == 7 and job.dedup_key is None and job.depends_on == ()
        child = q.enqueue("new", 1, depends_on=[job.id])
        assert child.state is JobState.WAITING
        claimed = q.dequeue("old")
        assert claimed is not None
        q.ack(claimed)
        assert q.get_job(child.id).state is JobState.READY


def test_schedule_and_subscription_tables_survive_reopen(db_path: Path) -> None:
    with Queue(db_path, durability="normal") as q:
        q.subscribe("orders", queue="billing")
        q.schedule("reports", 1, every=60)
    with Queue(db_path, durability="normal") as q:
        assert [s.queue for s in q.subscriptions("orders")] == ["billing"]
        assert q.get_schedule("reports").every == 60
