"""Guard: the hot statements stay index lookups however much history the database holds.

With 50,000 done jobs in the table, the claim, ack, enqueue and lease statements must SEARCH
an index or the primary key; a ``SCAN`` would make every consumer slower as history grows.
Keep this test when changing any SQL: add new hot-path statements to ``HOT_PATH``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistent_queue import JobState, Queue
from persistent_queue.storage.queries import queries
from persistent_queue.storage.sqlite import SQLiteDialect
from tests.support import FakeClock

TERMS = SQLiteDialect.state_index_terms

DONE_JOBS = 50_000
Q = queries("sqlite")

#: Statements run for every job (or every poll); each must avoid scanning.
HOT_PATH = [
    "claim",
    "ack",
    "insert_job",
    "insert_job_if_queue",
    "insert_jobs_batch",
    "ack_many",
    "insert_workflow_job",
    "select_leased",
    "extend",
    "peek_claimable",
    "next_available_at",
    "find_exhausted_leases",
    "retry_later",
    "requeue",
    "get_job",
    "insert_dead_letter",
    "delete_job",
    "count_unfinished",
    "cleanup_done",
    "cleanup_results",
    "dependency_results",
    # control of running jobs (schema 7): each reads its row by id
    "set_progress",
    "cancel_requests",
    "request_cancel",
    "cancel_job",
    "retry_now",
    "delete_job_events",
    "delete_job_edges",
    "edit_dead_letter",
    "any_exhausted_lease",
    "cleanup_cancelled",
    # flow control (storage/flow.py): a limited queue's claim, and the ack that announces it
    "flow_is_limited",
    "flow_candidates",
    "flow_live_leases",
    "flow_group_heads",
    "flow_default_heads",
    "claim_chosen",
    "flow_record",
    "ack_announce",
]

#: What operators run (stats, listing, cleanup, throughput, queue deletion): with history in
#: the table these may read unfinished jobs (through their partial indexes) and the done
#: jobs of one window or one batch, never the table's done rows one by one.
OPERATOR = [
    "count_by_state",
    "count_pending_detail",
    "count_unfinished",
    "count_occupied",
    "purge_queue",
    "delete_queue_jobs",
    "done_queue_names",
    "cleanup_done",
    "cleanup_results",
    "cleanup_cancelled",
    "throughput_enqueued",
    "throughput_acked",
    "flow_default_group",
    "flow_forget_groups",
    # operators' reads (schema 9): jobs running now, the queues' alerts
    "running_jobs",
    "alert_thresholds",
    "alert_failed",
    "alert_acked",
]

#: Partial indexes that hold only unfinished jobs: walking one is bounded by the backlog.
UNFINISHED_INDEXES = ("jobs_claim", "jobs_waiting", "jobs_leases")

HARMLESS_SCANS = ("SCAN json_each", "SCAN CONSTANT ROW", "SCAN names", "SCAN queues",
                  "SCAN dead_letters", "SCAN q", "SCAN j USING INDEX jobs_done",
                  "SCAN (subquery", "SCAN groups", "SCAN w")

PARAMS = {
    "queue": "busy", "name": "busy", "limit": 10, "visibility_timeout": None,
    "now": 1_700_000_000.0, "id": 25_000, "token": "0" * 32, "until": 1_700_000_060.0,
    "priority": 0, "payload": "{}", "headers": None, "max_attempts": None,
    "available_at": 1_700_000_000.0, "error": None, "reason": "r", "before": 1.0,
    "batch": 1000, "state": "ready", "dedup_key": "k", "depends_on": None,
    "bucket": 60.0, "since": 1_699_990_000.0,
    "result": None, "payloads": '["{}", "[]"]', "leases": '{"25000": "00", "25001": "01"}',
    "timeout": None, "worker": "w", "ids": "[25000, 25001]", "fraction": 0.5, "message": None,
    "seconds": None, "ran": 1, "set_payload": 1, "set_headers": 0, "set_priority": 0,
    "group_key": None, "window": 1, "need": 2, "rate_tat": None, "throttled": 0,
}


def bind(statement: str) -> dict[str, object]:
    return {name: PARAMS[name] for name in set(re.findall(r":(\w+)", statement))}


@pytest.fixture(scope="module", params=["as created", "after ANALYZE"])
def history_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Queue]:
    """A database holding 50,000 done jobs plus a little live work."""
    path: Path = tmp_path_factory.mktemp("plans") / "queue.db"
    clock = FakeClock()
    q = Queue(path, clock=clock, durability="normal")
    q.create_queue("busy")
    q.create_queue("quiet")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO jobs (queue, state, priority, payload, attempts, available_at,
                          created_at, updated_at, finished_at)
        SELECT CASE WHEN i % 10 = 0 THEN 'quiet' ELSE 'busy' END, 'done', i % 3, '{}', 1,
               ?, ?, ?, ?
        FROM n
        """,
        (DONE_JOBS, clock.now - 1, clock.now - 1, clock.now - 1, clock.now - 1),
    )
    q.enqueue_many("busy", list(range(20)), priority=1)
    q.dequeue_many("busy", 5)
    q.enqueue("busy", "later", delay=3600)
    if request.param == "after ANALYZE":
        conn.execute("ANALYZE")
    conn.close()
    assert q.stats("busy").done + q.stats("quiet").done == DONE_JOBS
    yield q
    q.close()


def plan(queue: Queue, statement: str) -> list[str]:
    rows = queue.backend.execute_read(  # type: ignore[attr-defined]
        "EXPLAIN QUERY PLAN " + statement, bind(statement))
    return [str(row[3]) for row in rows]


def test_every_ack_probes_for_dependents_through_an_index(history_db: Queue) -> None:
    # The WHEN clause of the dependency-release trigger runs on every acked job (schema 4).
    text = history_db.backend.execute_read(  # type: ignore[attr-defined]
        "SELECT sql FROM sqlite_master WHERE name = 'jobs_release_dependents'")[0][0]
    when = text[text.index("WHEN") + len("WHEN"):text.index("BEGIN")]
    probe = when[when.index("EXISTS"):].strip().replace("NEW.id", ":id")
    rows = history_db.backend.execute_read(  # type: ignore[attr-defined]
        "EXPLAIN QUERY PLAN SELECT " + probe, {"id": 1})
    steps = [str(row[3]) for row in rows]
    assert any("job_dependencies_parent" in step for step in steps), steps
    assert not [step for step in steps if step.startswith("SCAN")
                and step != "SCAN CONSTANT ROW"], steps


@pytest.mark.parametrize("name", HOT_PATH)
def test_hot_statements_never_scan_jobs(history_db: Queue, name: str) -> None:
    steps = plan(history_db, Q[name])
    # Reading the batch passed in as a JSON parameter is a scan of that parameter only.
    scans = [step for step in steps
             if step.startswith("SCAN") and not step.startswith(HARMLESS_SCANS)]
    assert not scans, f"{name} scans: {steps}"
    for step in steps:
        if re.match(r"(SEARCH|SCAN) (jobs|j)\b", step):
            assert "USING" in step, f"{name}: {step}"


@pytest.mark.parametrize("name", OPERATOR)
def test_operator_statements_never_read_done_rows_through_the_table(
    history_db: Queue, name: str
) -> None:
    for step in plan(history_db, Q[name]):
        if not re.match(r"(SEARCH|SCAN) (jobs|j)\b", step):
            continue
        assert "USING" in step, f"{name}: {step}"  # never the table itself
        if step.startswith("SCAN"):
            # Walking a whole index: only one of unfinished jobs, or the done (or
            # cancelled) index read alone (counting done or cancelled jobs).
            assert any(index in step for index in UNFINISHED_INDEXES) or (
                "COVERING INDEX jobs_done" in step
                or "COVERING INDEX jobs_cancelled" in step), f"{name}: {step}"


def test_listing_by_state_uses_the_state_index_or_stops_after_a_page(history_db: Queue) -> None:
    for state, index in (("ready", "jobs_claim"), ("leased", "jobs_claim"),
                         ("waiting", "jobs_waiting"), ("cancelled", "jobs_cancelled")):
        steps = history_db.backend.execute_read(  # type: ignore[attr-defined]
            "EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE queue = :queue AND "  # noqa: S608
            f"{TERMS[JobState(state)]}state = :state ORDER BY id DESC LIMIT 50",
            {"queue": "busy", "state": state})
        assert any(index in str(row[3]) for row in steps), (state, steps)
    jobs = history_db.list_jobs("busy", state="done", limit=5)
    assert len(jobs) == 5 and jobs == sorted(jobs, key=lambda job: -job.id)


def test_the_claim_uses_the_claim_index(history_db: Queue) -> None:
    steps = plan(history_db, Q["claim"])
    assert any("jobs_claim" in step for step in steps), steps
    assert not any("TEMP B-TREE" in step for step in steps), steps  # no sort per claim


def test_the_batch_ack_looks_up_each_lease_by_id(history_db: Queue) -> None:
    steps = plan(history_db, Q["ack_many"])
    assert "SEARCH jobs USING INTEGER PRIMARY KEY (rowid=?)" in steps, steps


def test_the_hot_path_list_covers_every_lease_statement() -> None:
    lease_statements = {name for name, text in Q.items() if ":token" in text}
    assert lease_statements <= set(HOT_PATH)


def test_a_worker_asking_for_cancel_requests_reads_its_jobs_by_id(history_db: Queue) -> None:
    # Polled about twice a second by every worker, for the jobs it runs: never a scan.
    steps = plan(history_db, Q["cancel_requests"])
    assert "SEARCH jobs USING INTEGER PRIMARY KEY (rowid=?)" in steps, steps
    assert not [step for step in steps if step.startswith("SCAN")
                and not step.startswith("SCAN json_each")], steps


def test_a_limited_claim_reads_live_leases_and_group_heads_through_their_indexes(
        history_db: Queue) -> None:
    assert plan(history_db, Q["flow_live_leases"]) == [
        "SEARCH jobs USING INDEX jobs_leases (lease_expires_at>?)"]
    heads = plan(history_db, Q["flow_group_heads"])
    # two probes to skip from group to group; each group's head; its window, read lazily
    assert sum("USING INDEX jobs_groups" in step for step in heads) == 4, heads
    assert "CO-ROUTINE w" in heads, heads
    assert plan(history_db, Q["flow_default_heads"])[0].startswith(
        "SEARCH j USING INDEX jobs_groups (queue=? AND group_key=?)")
    assert "SEARCH jobs USING INTEGER PRIMARY KEY (rowid=?)" in plan(history_db,
                                                                      Q["claim_chosen"])


@pytest.mark.parametrize("queue_name", [None, "busy"])
def test_running_jobs_read_the_live_leases_through_their_index(
        history_db: Queue, queue_name: str | None) -> None:
    steps = [str(row[3]) for row in history_db.backend.execute_read(  # type: ignore[attr-defined]
        "EXPLAIN QUERY PLAN " + Q["running_jobs"],
        {"queue": queue_name, "now": PARAMS["now"], "limit": 10})]
    assert steps[0] == "SEARCH jobs USING INDEX jobs_leases (lease_expires_at>?)", steps
    assert [job.queue for job in history_db.running_jobs(queue_name)] == ["busy"] * 5


def test_the_failure_rate_alert_reads_one_window_of_events_and_of_done_jobs(
        history_db: Queue) -> None:
    assert plan(history_db, Q["alert_failed"])[0] == (
        "SEARCH job_events USING INDEX job_events_at (at>?)")
    assert "SEARCH j USING COVERING INDEX jobs_done (queue=? AND finished_at>?)" in plan(
        history_db, Q["alert_acked"])
