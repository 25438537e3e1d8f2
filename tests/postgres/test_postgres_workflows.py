"""Workflows on PostgreSQL under real concurrency: OS processes racing in separate transactions.

SQLite gets these guarantees from its single writer lock; on PostgreSQL each one rests on a
lock the backend takes (see persistent_queue/storage/workflows.py). Every test starts its
child processes together (a start barrier) so they really overlap, then checks the database.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import JobState, Queue
from tests.postgres_support import SessionCluster
from tests.support import ROOT, wait_for

START = 1_700_000_000.0  # the children's clock (tests/postgres/workflow_child.py)
DEADLINE = 180.0  # generous: the machine is shared with other test runs


pytestmark = pytest.mark.postgres


@pytest.fixture
def url(pg_url: str) -> str:
    """A fresh, migrated database for one test."""
    return pg_url


@pytest.fixture(scope="module")
def schema_url(pg_session: SessionCluster) -> Iterator[str]:
    """One migrated database shared by the module's read-only tests (query plans)."""
    name = pg_session.new_database(reuse=False)  # no dead rows from earlier tests
    yield pg_session.url(name)
    pg_session.release(name)


@pytest.fixture
def queue(url: str) -> Iterator[Queue]:
    with Queue(url, clock=lambda: START, durability="normal") as q:
        yield q


Race = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def race(url: str, tmp_path: Path, subprocess_env: dict[str, str]) -> Race:
    """Start one child per argument list, release them together, return their reports."""

    def run(mode: str, *args: str) -> list[dict[str, Any]]:
        barrier = tmp_path / f"go-{mode}"
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.postgres.workflow_child", mode, url,
                 str(barrier), arg],
                cwd=ROOT, env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True)
            for arg in args
        ]
        try:
            wait_for(lambda: len(list(tmp_path.glob(f"go-{mode}.ready.*"))) == len(children)
                     or any(c.poll() is not None for c in children),
                     timeout=DEADLINE, message="children to connect")
            barrier.touch()
            reports = []
            for child in children:
                out, err = child.communicate(timeout=DEADLINE)
                assert child.returncode == 0, err
                reports.append(json.loads(out.strip().splitlines()[-1]))
            return reports
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait()

    return run


@pytest.mark.slow
def test_a_dedup_key_stores_one_job_across_racing_processes(queue: Queue, race: Race) -> None:
    queue.create_queue("orders")
    keys = 120
    reports = race("dedup", *[str(keys)] * 4)
    jobs = queue.list_jobs("orders", limit=10_000)
    assert len(jobs) == keys  # one job per key, whoever got there first
    by_key = {job.dedup_key: job.id for job in jobs}
    for report in reports:  # every process was handed the one stored job
        assert report["ids"] == by_key
    assert sum(report["created"] for report in reports) == keys
    assert queue.stats("orders").dedup_hits == 3 * keys


@pytest.mark.slow
def test_publish_and_enqueue_of_the_same_keys_neither_duplicate_nor_deadlock(
        queue: Queue, race: Race) -> None:
    queue.create_queue("b-bounded", max_size=10_000)
    queue.subscribe("events", queue="a-open")
    queue.subscribe("events", queue="b-bounded")
    keys = 100
    reports = race("mixed", *[str(keys)] * 4)  # any deadlock would fail a child
    assert sum(report["created"] for report in reports) == 2 * keys
    for name in ("a-open", "b-bounded"):
        stored = [job.dedup_key for job in queue.list_jobs(name, limit=10_000)]
        assert sorted(stored) == sorted(f"key-{n}" for n in range(keys))


def test_a_bounded_queue_never_exceeds_its_size(queue: Queue, race: Race) -> None:
    queue.create_queue("bounded", max_size=40)
    reports = race("bounded", *["60"] * 4)
    stored = sum(report["stored"] for report in reports)
    assert stored == 40
    assert len(queue.list_jobs("bounded", limit=1000)) == 40
    assert queue.stats("bounded").rejected_full == 4 * 60 - 40


def test_concurrent_schedulers_fire_each_tick_once(queue: Queue, race: Race) -> None:
    queue.schedule("reports", {"kind": "tick"}, every=10, start_at=START + 10)
    ticks = 120
    reports = race("schedules", *[str(ticks)] * 3)
    fired = [job_id for report in reports for job_id in report["fired"]]
    jobs = queue.list_jobs("reports", limit=10_000)
    assert sorted(fired) == sorted(job.id for job in jobs)  # every report is a stored job
    scheduled_for = [job.headers["scheduled_for"] for job in jobs]
    assert len(scheduled_for) == len(set(scheduled_for))  # no tick fired twice
    info = queue.get_schedule("reports")
    assert info.runs == len(jobs)
    assert info.runs + info.missed == ticks  # every tick fired or counted as missed
    assert info.next_run_at == START + 10 * (ticks + 1)


def test_two_parents_acked_at_once_release_their_child(queue: Queue, race: Race,
                                                       tmp_path: Path) -> None:
    pairs = 150
    children = []
    for n in range(pairs):
        first = queue.enqueue("parents", {"n": n, "side": "a"})
        second = queue.enqueue("parents", {"n": n, "side": "b"})
        children.append(queue.enqueue("children", n, depends_on=[first, second]).id)
    leased = queue.dequeue_many("parents", 2 * pairs, visibility_timeout=3600)
    assert len(leased) == 2 * pairs
    sides: dict[str, list[tuple[int, str]]] = {"a": [], "b": []}
    for job in leased:
        assert job.lease_token is not None
        sides[job.payload["side"]].append((job.id, job.lease_token))
    for side, leases in sides.items():
        (tmp_path / f"{side}.json").write_text(json.dumps(sorted(leases)))
    reports = race("ack", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert [report["acked"] for report in reports] == [pairs, pairs]
    states = {queue.get_job(job_id).state for job_id in children}
    assert states == {JobState.READY}  # the later ack of each pair saw the earlier one
    assert len(queue.dequeue_many("children", pairs)) == pairs


def test_a_child_enqueued_while_its_parent_is_acked_is_not_stranded(queue: Queue,
                                                                    url: str) -> None:
    """Enqueue-with-dependency and the parent's ack overlap: the child ends up ready."""
    parent = queue.enqueue("parents", 1)
    claimed = queue.dequeue("parents")
    assert claimed is not None and claimed.id == parent.id
    with Queue(url, clock=lambda: START, durability="normal") as other:
        with queue.atomic():  # the enqueue's transaction stays open ...
            child = queue.enqueue("children", 2, depends_on=[parent.id])
            acker = _in_thread(lambda: other.ack(claimed))
            # ... while the ack waits for it: the enqueue share-locked the parent's row.
            wait_for(lambda: _blocked_backends(url) >= 1, timeout=DEADLINE,
                     message="the ack to wait for the enqueue")
            assert acker.is_alive()
        acker.join(DEADLINE)
        assert not acker.is_alive() and acker.error is None
    assert queue.get_job(child.id).state is JobState.READY


def test_the_second_of_two_overlapping_parent_acks_waits_and_releases(queue: Queue,
                                                                       url: str) -> None:
    """Deterministic twin of the race above: the first ack's transaction stays open."""
    first = queue.enqueue("parents", "a")
    second = queue.enqueue("parents", "b")
    child = queue.enqueue("children", "c", depends_on=[first, second])
    leases = {job.payload: job for job in queue.dequeue_many("parents", 2)}
    with Queue(url, clock=lambda: START, durability="normal") as other:
        with queue.atomic():
            queue.ack(leases["a"])  # sees b unfinished: the child keeps waiting
            acker = _in_thread(lambda: other.ack(leases["b"]))
            # The second ack locks the waiting child before it looks at a: it must wait.
            wait_for(lambda: _blocked_backends(url) >= 1, timeout=DEADLINE,
                     message="the second ack to wait for the first")
            assert acker.is_alive()
        acker.join(DEADLINE)
        assert not acker.is_alive() and acker.error is None
    assert queue.get_job(child.id).state is JobState.READY


def test_a_job_redriven_while_its_dependency_is_acked_is_not_stranded(queue: Queue,
                                                                      url: str) -> None:
    parent = queue.enqueue("parents", 1)
    child = queue.enqueue("children", 2, depends_on=[parent])
    queue.move_to_dead_letter_queue(child.id, reason="operator")
    claimed = queue.dequeue("parents")
    assert claimed is not None
    with Queue(url, clock=lambda: START, durability="normal") as other:
        with queue.atomic():  # the redrive's transaction stays open ...
            assert queue.redrive(child.id) == [child.id]
            acker = _in_thread(lambda: other.ack(claimed))
            # ... and the ack waits for it: the redrive share-locked the dependency's row.
            wait_for(lambda: _blocked_backends(url) >= 1, timeout=DEADLINE,
                     message="the ack to wait for the redrive")
        acker.join(DEADLINE)
        assert not acker.is_alive() and acker.error is None
    assert queue.get_job(child.id).state is JobState.READY


def test_a_schedule_declared_by_two_processes_at_once_keeps_the_first_tick(
        queue: Queue, url: str) -> None:
    with Queue(url, clock=lambda: START + 5, durability="normal") as later:
        with queue.atomic():  # the first declaration is not committed yet ...
            first = queue.schedule("reports", {"kind": "daily"}, every=60)
            declaring = _in_thread(lambda: later.schedule("reports", {"kind": "daily"},
                                                          every=60))
            wait_for(lambda: _blocked_backends(url) >= 1, timeout=DEADLINE,
                     message="the second declaration to wait for the first")
        declaring.join(DEADLINE)
        assert not declaring.is_alive() and declaring.error is None
    # ... and the second, unchanged, keeps its tick, as it would have after the commit.
    assert queue.get_schedule("reports").next_run_at == first.next_run_at == START + 60


class _Thread:
    def __init__(self, action: Callable[[], object]) -> None:
        import threading

        self.error: BaseException | None = None

        def target() -> None:
            try:
                action()
            except BaseException as exc:  # reported to the test
                self.error = exc

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _in_thread(action: Callable[[], object]) -> _Thread:
    return _Thread(action)


def _blocked_backends(url: str) -> int:
    """Connections of this database waiting for a lock (read from a connection of its own:
    pg_stat_activity stays the same for the length of one transaction)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity "
                           "WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock'").fetchone()
    return 0 if row is None else int(row[0])


INDEXED_STATEMENTS = [
    "lock_queue", "count_occupied", "find_dedup", "lock_live_parents",
    "lock_dead_parents", "lock_parents_of", "waiting_dependents", "dead_dependents",
    "unmet_dependencies", "subscribers", "due_schedules", "next_schedule_at", "get_schedule",
    "lock_due_schedule", "advance_schedule", "count_dedup_hit", "count_rejected_full",
    "make_waiting", "restore_waiting", "delete_schedule",
]
PARAMS: dict[str, object] = {"id": 1, "ids": [1, 2], "queue": "q", "key": "k", "topic": "t",
                             "now": 1.0, "name": "n", "tick": 1.0, "next_run_at": 2.0,
                             "job_id": 1, "missed": 0, "n": 1, "finished_at": None}


def _scans(url: str, statement: str) -> list[str]:
    """The tables a statement reads without an index (sequential scans forbidden)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        row = conn.execute("EXPLAIN (FORMAT JSON) " + statement, PARAMS).fetchone()
    assert row is not None
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if node["Node Type"] == "Seq Scan":
            found.append(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(row[0][0]["Plan"])
    return found


@pytest.mark.parametrize("name", INDEXED_STATEMENTS)
def test_workflow_statements_search_an_index(schema_url: str, name: str) -> None:
    from persistent_queue.storage.queries import queries

    assert _scans(schema_url, queries("postgres")[name]) == []


def test_release_trigger_searches_indexes(schema_url: str) -> None:
    import re

    from persistent_queue.storage.queries import migrations

    script = migrations("postgres")[1][2]
    body = script[script.index("FUNCTION jobs_release_dependents"):]
    body = body[:body.index("$$;")]
    statements = [
        body[body.index("FOR child IN") + len("FOR child IN"):body.index("    LOOP")],
        body[body.index("SELECT queue INTO"):body.index("FOR UPDATE;") + len("FOR UPDATE")]
        .replace("INTO child_queue", ""),
        body[body.index("CONTINUE WHEN EXISTS (") + len("CONTINUE WHEN EXISTS ("):
             body.index("        );")],
        body[body.index("UPDATE jobs SET state = 'ready'"):body.index("WHERE id = child;")
             + len("WHERE id = child")],
    ]
    for statement in statements:
        statement = re.sub(r"\bchild\b|NEW\.id", "%(id)s", statement)
        statement = statement.replace("NEW.updated_at", "%(now)s")
        assert _scans(schema_url, statement) == [], statement


def _woken_by(url: str, action: Callable[[], object]) -> float:
    """Seconds a consumer blocked in ``wait_for_change`` takes to wake after ``action``."""
    import threading
    import time

    listening = threading.Event()
    woke: list[float] = []
    with Queue(url, clock=lambda: START, durability="normal") as consumer:

        def wait() -> None:
            consumer.backend.wait_for_change(0, 0.1)  # the first call starts listening
            listening.set()
            if consumer.backend.wait_for_change(DEADLINE, 0.1):
                woke.append(time.monotonic())

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        assert listening.wait(DEADLINE)
        started = time.monotonic()
        action()
        waiter.join(DEADLINE)
    assert woke, "the consumer was not woken"
    return woke[0] - started


@pytest.mark.parametrize("how", ["publish", "release", "schedule"])
def test_workflows_wake_waiting_consumers(queue: Queue, url: str, how: str) -> None:
    actions: dict[str, Callable[[], object]] = {
        "publish": lambda: queue.publish("events", {"kind": "signup"}),
        "release": lambda: queue.ack(leased),
        "schedule": lambda: queue.run_due_schedules(START + 10),
    }
    queue.subscribe("events", queue="inbox")
    queue.schedule("reports", 1, every=10, start_at=START + 10)
    parent = queue.enqueue("parents", 1)
    queue.enqueue("children", 2, depends_on=[parent])
    leased = queue.dequeue("parents")
    assert leased is not None
    assert _woken_by(url, actions[how]) < DEADLINE / 2  # woken, not timed out
