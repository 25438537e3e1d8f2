"""Guard: PostgreSQL statements read indexes, however much history the table holds.

The hot statements (claim, ack, enqueue, leases) must be index lookups. The operator
statements (stats, listing, cleanup, throughput, purge, queue deletion, health) may read
unfinished jobs through their partial indexes and the done jobs of one window, batch or
queue through ``jobs_done``, never the table's done rows one after another: schema 3 dropped
the indexes every transition wrote (``jobs_queue_state``, ``jobs_created``), and these
statements must not fall back to scanning the table instead. Plans are read with ``EXPLAIN``
against a table of done jobs, as autovacuum would leave it (vacuumed and analysed).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from persistent_queue import JobState, Queue
from persistent_queue.storage.queries import queries
from persistent_queue.storage.reads import list_jobs_query
from tests.support import FakeClock

Q = queries("postgres")
pytestmark = pytest.mark.postgres

DONE_JOBS = 30_000
#: One done job in this many belongs to the small queue; the rest to the busy one.
SMALL_SHARE = 100


def _plan(conn: Any, sql: str, params: dict[str, Any], *, analyze: bool = False) -> str:
    explain = "EXPLAIN (ANALYZE, COSTS OFF) " if analyze else "EXPLAIN "
    rows = conn.execute(explain + sql, params).fetchall()
    return "\n".join(row["QUERY PLAN"] for row in rows)


# -- hot statements ----------------------------------------------------------------------------


def test_hot_statements_use_indexes_with_many_done_rows(pg_fresh_url: str) -> None:
    with Queue(pg_fresh_url, clock=FakeClock(), durability="normal") as pq:
        backend = pq.backend
        conn = backend.dialect.conn()  # type: ignore[attr-defined]
        now = pq.now()
        pq.create_queue("q")
        conn.execute(
            "INSERT INTO jobs (queue, state, priority, payload, attempts, available_at, "
            "created_at, updated_at, finished_at) SELECT 'q', 'done', 0, '{}', 1, %(now)s, "
            "%(now)s, %(now)s, %(now)s FROM generate_series(1, 30000)", {"now": now})
        pq.enqueue_many("q", [{"n": n} for n in range(20)])
        leased = pq.dequeue_many("q", 10)
        conn.execute("ANALYZE")

        def plan(name: str, params: dict[str, object]) -> str:
            return _plan(conn, Q[name], params)

        lease = {"id": leased[0].id, "token": "t", "now": now}
        by_id = {"id": leased[0].id, "now": now}
        plans = {
            "claim": plan("claim", {"queue": "q", "limit": 5, "visibility_timeout": None,
                                    "now": now, "worker": "w"}),
            "peek_claimable": plan("peek_claimable", {"queue": "q", "now": now}),
            "next_available_at": plan("next_available_at", {"queue": "q"}),
            "ack": plan("ack", {**lease, "result": None}),
            "ack_many": plan("ack_many", {"ids": [j.id for j in leased],
                                          "tokens": ["t"] * len(leased), "now": now}),
            "select_leased": plan("select_leased", lease),
            "insert_jobs": plan("insert_jobs", {
                "queue": "q", "now": now, "priorities": [0, 1], "payloads": ["{}", "[]"],
                "headers": [None, None], "max_attempts": [None, 3],
                "available_ats": [now, now], "timeouts": [None, 5.0], "group_key": None}),
            "find_exhausted_leases": plan("find_exhausted_leases", {"now": now}),
            "any_exhausted_lease": plan("any_exhausted_lease", {"now": now}),
            "insert_job_if_queue": plan("insert_job_if_queue", {
                "queue": "q", "priority": 0, "payload": "{}", "headers": None,
                "max_attempts": None, "available_at": now, "now": now, "timeout": None}),
            # Control of running jobs (schema 7): each finds its rows by primary key.
            "cancel_requests": plan("cancel_requests", {"ids": [j.id for j in leased]}),
            "set_progress": plan("set_progress", {**lease, "fraction": 0.5, "message": None,
                                                  "seconds": None}),
            "request_cancel": plan("request_cancel", {**by_id, "reason": None}),
            "cancel_job": plan("cancel_job", {**by_id, "reason": None, "ran": 1}),
            "retry_now": plan("retry_now", by_id),
        }
    for name, text in plans.items():
        assert "Seq Scan on jobs" not in text, f"{name}:\n{text}"
    assert "jobs_claim" in plans["claim"] and "jobs_claim" in plans["peek_claimable"]
    assert "jobs_claim" in plans["next_available_at"]
    assert "jobs_leases" in plans["find_exhausted_leases"]
    assert "jobs_leases" in plans["any_exhausted_lease"]
    for name in ("ack", "ack_many", "select_leased", "cancel_requests", "set_progress",
                 "request_cancel", "cancel_job", "retry_now"):
        assert "jobs_pkey" in plans[name], f"{name}:\n{plans[name]}"
    # The queue's settings come from `queues` (a few rows: a scan may be cheapest there).
    assert "Insert on jobs" in plans["insert_job_if_queue"]


# -- operator statements -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def history(pg_session: Any) -> Iterator[tuple[Queue, dict[str, Any]]]:
    """A database holding DONE_JOBS done jobs (finished one a second, 200-byte payloads) in
    queues ``busy`` and ``small``, and a few waiting, ready and leased jobs in each."""
    name = pg_session.new_database(reuse=False)
    pq = Queue(pg_session.url(name), clock=FakeClock(), durability="normal")
    conn = pq.backend.dialect.conn()  # type: ignore[attr-defined]
    now = pq.now()
    for queue in ("busy", "small"):
        pq.create_queue(queue)
    # Synchronous commits up to the VACUUM: it marks pages all-visible only once the commits
    # that wrote them are flushed (as they long are when autovacuum comes round).
    conn.execute("SET synchronous_commit = on")
    conn.execute(
        "INSERT INTO jobs (queue, state, priority, payload, attempts, available_at, "
        "created_at, updated_at, finished_at) "
        "SELECT CASE WHEN g %% %(share)s = 0 THEN 'small' ELSE 'busy' END, 'done', 0, "
        "'\"' || repeat('x', 198) || '\"', 1, %(now)s - g, %(now)s - g - 1, %(now)s - g, "
        "%(now)s - g "
        "FROM generate_series(1, %(n)s) AS g",
        {"now": now, "n": DONE_JOBS, "share": SMALL_SHARE})
    for queue in ("busy", "small"):
        jobs = pq.enqueue_many(queue, [{"n": n} for n in range(10)])
        pq.enqueue(queue, {"waits": True}, depends_on=[jobs[0].id])
        pq.dequeue_many(queue, 3)
        pq.cancel(jobs[-1].id)
    conn.execute("VACUUM ANALYZE")
    conn.execute("RESET synchronous_commit")
    params = {"now": now, "before": now - DONE_JOBS + 1000, "batch": 1000,
              "since": now - 3600, "bucket": 60.0}
    yield pq, params
    pq.close()
    pg_session.release(name)


#: Statement -> the queue it is run for: the busy one where the statement reads a window or
#: a batch of its done jobs, the small one where it reads all of that queue's jobs.
OPERATOR = {
    "count_by_state": None,
    "count_pending_detail": None,
    "count_unfinished": "small",
    "count_occupied": "busy",
    "purge_queue": "busy",
    "delete_queue_jobs": "small",
    "done_queue_names": None,
    "cleanup_done": "busy",
    "cleanup_results": "busy",
    "cleanup_cancelled": "busy",
    "throughput_enqueued": None,
    "throughput_acked": None,
    "quick_check": None,
    "alert_thresholds": None,
    "alert_failed": None,
    "alert_acked": None,
}


@pytest.mark.parametrize("name", sorted(OPERATOR))
def test_operator_statements_never_scan_the_done_rows(
    history: tuple[Queue, dict[str, Any]], name: str
) -> None:
    pq, params = history
    conn = pq.backend.dialect.conn()  # type: ignore[attr-defined]
    queue = OPERATOR[name]
    text = _plan(conn, Q[name], {**params, "queue": queue, "name": queue})
    if name == "quick_check":
        # The check of lease tokens outside leases is a table scan that runs only when the
        # table's CHECK constraint is missing (see test_quick_check_without_the_constraint).
        text = _plan(conn, Q[name], {}, analyze=True)
        scans = [line for line in text.splitlines() if "Seq Scan on jobs" in line]
        assert scans and all("never executed" in line for line in scans), text
        return
    assert "Seq Scan on jobs" not in text, f"{name}:\n{text}"
    assert "jobs_queue_state" not in text and "jobs_created" not in text


def test_done_jobs_are_counted_in_their_index_alone(
    history: tuple[Queue, dict[str, Any]]
) -> None:
    pq, params = history
    text = _plan(pq.backend.dialect.conn(), Q["count_by_state"], params)  # type: ignore[attr-defined]
    assert "Index Only Scan using jobs_done" in text, text
    assert "jobs_claim" in text and "jobs_waiting" in text, text
    assert "jobs_cancelled" in text, text


@pytest.mark.parametrize("queue", ["busy", None])
def test_running_jobs_read_the_live_leases_through_their_index(
    history: tuple[Queue, dict[str, Any]], queue: str | None
) -> None:
    pq, params = history
    conn = pq.backend.dialect.conn()  # type: ignore[attr-defined]
    text = _plan(conn, Q["running_jobs"], {"now": params["now"], "queue": queue, "limit": 100})
    assert "jobs_leases" in text and "Seq Scan on jobs" not in text, text
    assert {job.queue for job in pq.running_jobs(queue)} == (
        {"busy", "small"} if queue is None else {"busy"})


def test_the_failure_rate_alert_reads_a_window_of_the_done_index(
    history: tuple[Queue, dict[str, Any]]
) -> None:
    pq, params = history
    text = _plan(pq.backend.dialect.conn(), Q["alert_acked"], params)  # type: ignore[attr-defined]
    assert "jobs_done" in text and "finished_at" in text, text


def test_cleanup_and_throughput_read_ranges_of_the_done_index(
    history: tuple[Queue, dict[str, Any]]
) -> None:
    pq, params = history
    conn = pq.backend.dialect.conn()  # type: ignore[attr-defined]
    for name in ("cleanup_done", "cleanup_results", "throughput_acked", "throughput_enqueued"):
        text = _plan(conn, Q[name], {**params, "queue": "busy"})
        assert "jobs_done" in text and "finished_at" in text, f"{name}:\n{text}"
    assert "jobs_pkey" in _plan(conn, Q["cleanup_done"], {**params, "queue": "busy"})


@pytest.mark.parametrize(("state", "indexes"), [
    (JobState.READY, ("jobs_claim",)), (JobState.LEASED, ("jobs_claim", "jobs_leases")),
    (JobState.WAITING, ("jobs_waiting",)), (JobState.DONE, ()),
    (JobState.CANCELLED, ("jobs_cancelled",)),
])
@pytest.mark.parametrize("queue", ["busy", "small", None])
def test_listing_by_state_uses_its_index_or_stops_after_a_page(
    history: tuple[Queue, dict[str, Any]], state: JobState, indexes: tuple[str, ...],
    queue: str | None,
) -> None:
    pq, _ = history
    sql, params = list_jobs_query(pq.backend.dialect, queue, state=state, headers={},  # type: ignore[attr-defined]
                                  limit=50, offset=0,
                                  newest_first=True)
    text = _plan(pq.backend.dialect.conn(), sql, params)  # type: ignore[attr-defined]
    assert "Seq Scan on jobs" not in text, text
    # Unfinished states through a partial index of such jobs; done jobs by id (a page).
    if indexes:
        assert any(index in text for index in indexes), text
    jobs = pq.list_jobs(queue, state=state, limit=5)
    assert jobs and all(job.state is state for job in jobs)
    assert [job.id for job in jobs] == sorted((job.id for job in jobs), reverse=True)


def test_quick_check_without_the_constraint_still_finds_a_lease_token_outside_a_lease(
    pg_fresh_url: str,
) -> None:
    with Queue(pg_fresh_url, clock=FakeClock(), durability="normal") as pq:
        job = pq.enqueue("q", {"n": 1})
        assert pq.check_integrity() == []
        with psycopg.connect(pq.db, autocommit=True) as conn:
            name = conn.execute("SELECT conname FROM pg_constraint WHERE conrelid = "
                                "'jobs'::regclass AND contype = 'c' AND "
                                "pg_get_constraintdef(oid) LIKE '%%lease_token IS NOT NULL%%'"
                                ).fetchone()
            assert name is not None
            conn.execute(f'ALTER TABLE jobs DROP CONSTRAINT "{name[0]}"')
            conn.execute("UPDATE jobs SET lease_token = 'stale' WHERE id = %s", (job.id,))
        assert pq.check_integrity() == [f"job {job.id} is ready but holds a lease token"]


def test_a_limited_claim_reads_indexes_with_many_done_rows(pg_fresh_url: str) -> None:
    """Flow control's statements (storage/flow.py): the queue's live leases through
    jobs_leases, each group's first jobs through jobs_groups, the chosen jobs by id."""
    with Queue(pg_fresh_url, clock=FakeClock(), durability="normal") as pq:
        conn = pq.backend.dialect.conn()  # type: ignore[attr-defined]
        now = pq.now()
        pq.create_queue("g", group_concurrency=2, concurrency=50)
        conn.execute(
            "INSERT INTO jobs (queue, state, priority, payload, attempts, available_at, "
            "created_at, updated_at, finished_at, group_key) SELECT 'g', 'done', 0, '{}', 1, "
            "%(now)s, %(now)s, %(now)s, %(now)s, 'k' || (n %% 50) "
            "FROM generate_series(1, 30000) AS n", {"now": now})
        for group in range(5):
            pq.enqueue_many("g", [{"n": n} for n in range(20)], group_key=f"k{group}")
        leased = pq.dequeue_many("g", 4)
        conn.execute("ANALYZE")
        params = {"queue": "g", "name": "g", "now": now, "max_attempts": 5, "limit": 3,
                  "window": 2, "need": 2, "ids": [j.id for j in leased],
                  "visibility_timeout": 30.0, "id": leased[0].id, "token": "t",
                  "result": None, "worker": "w", "timeout": None}
        plans = {name: _plan(conn, Q[name], params) for name in (
            "flow_candidates", "flow_live_leases", "flow_group_heads", "flow_default_heads",
            "claim_chosen", "ack_announce", "flow_default_group")}
    for name, text in plans.items():
        assert "Seq Scan on jobs" not in text, f"{name}:\n{text}"
    assert "jobs_leases" in plans["flow_live_leases"], plans["flow_live_leases"]
    for name in ("flow_group_heads", "flow_default_heads"):
        assert "jobs_groups" in plans[name], f"{name}:\n{plans[name]}"
    assert "Sort" not in plans["flow_group_heads"], plans["flow_group_heads"]  # read in order
    assert "jobs_claim" in plans["flow_candidates"], plans["flow_candidates"]
    for name in ("claim_chosen", "ack_announce"):
        assert "jobs_pkey" in plans[name], f"{name}:\n{plans[name]}"
