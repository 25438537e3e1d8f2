"""``connection=``: enqueue, ack and nack inside the application's own transaction, on both
backends. The job exists only if the caller commits; the ack commits with the handler's
writes or not at all; every refusal leaves nothing written and the caller's transaction as it
was; a consumer waiting for work wakes at the caller's commit."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import (
    DeadLetter,
    ForeignConnection,
    InvalidArgument,
    InvalidDependency,
    InvalidPayload,
    JobState,
    LeaseLost,
    NotInTransaction,
    Queue,
    QueueFull,
    UnusableConnection,
    WrongConnectionKind,
)
from tests.support import FakeClock
from tests.transactions_support import App


@pytest.fixture
def app(db_path: Path | str, queue: Queue) -> Iterator[App]:
    """The application's connection to the queue's database (the queue's schema is there)."""
    application = App(db_path)
    yield application
    application.close()


def _jobs(queue: Queue, name: str = "emails") -> list[Any]:
    return sorted(queue.list_jobs(name), key=lambda job: job.id)


# -- enqueue --------------------------------------------------------------------------------


def test_a_rolled_back_enqueue_leaves_no_job_and_a_committed_one_a_visible_job(
        queue: Queue, app: App) -> None:
    app.begin()
    app.insert("orders", 42)
    job = queue.enqueue("emails", {"order": 42}, connection=app.conn)
    assert job.state is JobState.READY
    assert _jobs(queue) == []  # not committed: the queue's own connection does not see it
    app.rollback()
    assert _jobs(queue) == [] and app.rows("orders") == []

    app.begin()
    app.insert("orders", 43)
    job = queue.enqueue("emails", {"order": 43}, connection=app.conn)
    app.commit()
    assert app.rows("orders") == [43]
    claimed = queue.dequeue("emails")
    assert claimed is not None and claimed.id == job.id and claimed.payload == {"order": 43}


def test_enqueue_many_and_a_task_join_the_transaction(queue: Queue, app: App) -> None:
    @queue.task(queue="emails", name="send")
    def send(order: int) -> None:
        del order

    for commit in (False, True):
        app.begin()
        queue.enqueue_many("emails", [1, 2, 3], connection=app.conn)
        handle = send.options(connection=app.conn, priority=5).delay(7)
        app.commit() if commit else app.rollback()
    jobs = _jobs(queue)
    assert [job.payload for job in jobs] == [1, 2, 3, {"task": "send", "args": [7],
                                                        "kwargs": {}}]
    assert handle.id == jobs[-1].id and jobs[-1].priority == 5


def test_workflow_options_run_in_the_callers_transaction(queue: Queue, app: App) -> None:
    app.begin()
    parent = queue.enqueue("emails", "parent", connection=app.conn)
    child = queue.enqueue("emails", "child", depends_on=[parent], connection=app.conn)
    first = queue.enqueue("emails", "once", dedup_key="k", connection=app.conn)
    again = queue.enqueue("emails", "once", dedup_key="k", connection=app.conn)
    app.commit()
    assert child.state is JobState.WAITING
    assert again.deduplicated and again.id == first.id
    assert [job.payload for job in _jobs(queue)] == ["parent", "child", "once"]


def test_a_refused_write_leaves_the_callers_transaction_as_it_was(queue: Queue,
                                                                   app: App) -> None:
    queue.create_queue("bounded", max_size=1)
    queue.enqueue("bounded", "fills it")
    app.begin()
    app.insert("orders", 1)
    with pytest.raises(InvalidDependency):
        queue.enqueue("emails", "orphan", depends_on=[999_999], connection=app.conn)
    with pytest.raises(QueueFull):
        queue.enqueue("bounded", "no room", connection=app.conn)
    with pytest.raises(InvalidPayload):
        queue.enqueue("emails", float("nan"), connection=app.conn)
    assert app.in_transaction  # on PostgreSQL too: not a failed transaction
    app.insert("orders", 2)
    app.commit()
    assert app.rows("orders") == [1, 2]
    assert _jobs(queue) == [] and len(queue.list_jobs("bounded")) == 1


# -- ack and nack ---------------------------------------------------------------------------


def test_an_ack_commits_with_the_effect_or_not_at_all(queue: Queue, app: App,
                                                      clock: FakeClock) -> None:
    queue.enqueue("emails", {"order": 1})
    claimed = queue.dequeue("emails", visibility_timeout=30)
    assert claimed is not None
    app.begin()
    app.insert("effects", claimed.id)
    queue.ack(claimed, connection=app.conn)
    assert queue.get_job(claimed.id).state is JobState.LEASED  # not committed yet
    app.rollback()
    assert queue.get_job(claimed.id).state is JobState.LEASED and app.rows("effects") == []

    clock.advance(31)  # the lease expires as usual: another attempt claims it
    again = queue.dequeue("emails", visibility_timeout=30)
    assert again is not None and again.id == claimed.id and again.attempts == 2
    app.begin()
    app.insert("effects", again.id)
    queue.ack(again, result={"sent": True}, connection=app.conn)
    app.commit()
    done = queue.get_job(again.id)
    assert done.state is JobState.DONE and app.rows("effects") == [again.id]
    assert queue.result(again.id, timeout=0) == {"sent": True}


def test_an_ack_with_a_stale_lease_raises_lease_lost_and_the_caller_rolls_back(
        queue: Queue, app: App, clock: FakeClock) -> None:
    queue.enqueue("emails", {"order": 1})
    stale = queue.dequeue("emails", visibility_timeout=10)
    assert stale is not None
    clock.advance(11)
    current = queue.dequeue("emails", visibility_timeout=10)
    assert current is not None and current.id == stale.id
    app.begin()
    app.insert("effects", stale.id)
    with pytest.raises(LeaseLost, match="stale"):
        queue.ack(stale, connection=app.conn)
    assert app.in_transaction  # usable: the caller decides, and rolls back
    app.rollback()
    assert app.rows("effects") == []
    queue.ack(current)  # the current lease is untouched
    assert queue.get_job(current.id).state is JobState.DONE


def test_a_nack_joins_the_transaction(queue: Queue, app: App) -> None:
    queue.enqueue("emails", {"order": 1})
    claimed = queue.dequeue("emails")
    assert claimed is not None
    for commit in (False, True):
        app.begin()
        queue.nack(claimed, "smtp down", delay=5, connection=app.conn)
        app.commit() if commit else app.rollback()
        if not commit:
            assert queue.get_job(claimed.id).state is JobState.LEASED
    failed = queue.get_job(claimed.id)
    assert failed.state is JobState.READY and failed.last_error == "smtp down"


def test_a_nack_on_the_last_attempt_dead_letters_in_the_transaction(queue: Queue,
                                                                     app: App) -> None:
    queue.enqueue("emails", {"order": 1}, max_attempts=1)
    claimed = queue.dequeue("emails")
    assert claimed is not None
    app.begin()
    letter = queue.nack(claimed, "bounced", connection=app.conn)
    assert isinstance(letter, DeadLetter) and letter.reason == "failed 1 of 1 attempts"
    app.rollback()
    assert queue.get_job(claimed.id).state is JobState.LEASED
    assert queue.dead_letters("emails") == []
    app.begin()
    queue.nack(claimed, "bounced", connection=app.conn)
    app.commit()
    assert [dead.id for dead in queue.dead_letters("emails")] == [claimed.id]


# -- refusals: nothing written --------------------------------------------------------------


@pytest.fixture
def other_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Another database than the queue's (a file, or a PostgreSQL database without the queue's
    schema)."""
    if backend == "sqlite":
        return str(tmp_path / "other.db")
    return str(request.getfixturevalue("pg_empty_url"))


def test_a_connection_to_another_database_is_refused(queue: Queue, app: App,
                                                     other_database: str) -> None:
    other = App(other_database)
    try:
        other.begin()
        with pytest.raises(ForeignConnection):
            queue.enqueue("emails", "x", connection=other.conn)
        assert other.in_transaction
        other.rollback()
    finally:
        other.close()
    if not app.sqlite:  # the queue's database, but a search_path without its tables
        app.begin()
        app.conn.execute("SET LOCAL search_path TO pg_catalog")
        with pytest.raises(ForeignConnection, match="search_path"):
            queue.enqueue("emails", "x", connection=app.conn)
        app.rollback()
    else:
        memory = sqlite3.connect(":memory:", isolation_level=None)
        memory.execute("BEGIN")
        with pytest.raises(ForeignConnection):
            queue.enqueue("emails", "x", connection=memory)
        memory.close()
    assert _jobs(queue) == []


@pytest.mark.sqlite_only
def test_a_queue_in_memory_takes_no_connection(tmp_path: Path) -> None:
    with Queue(":memory:") as memory_queue:
        conn = sqlite3.connect(tmp_path / "app.db", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        with pytest.raises(ForeignConnection, match="in memory"):
            memory_queue.enqueue("emails", "x", connection=conn)
        conn.close()


def test_a_connection_outside_a_transaction_is_refused(queue: Queue, app: App) -> None:
    assert not app.in_transaction  # autocommit mode: a write would commit at once
    with pytest.raises(NotInTransaction, match="autocommit"):
        queue.enqueue("emails", "x", connection=app.conn)
    queue.enqueue("emails", "mine")
    claimed = queue.dequeue("emails")
    with pytest.raises(NotInTransaction):
        queue.ack(claimed, connection=app.conn)
    assert not app.in_transaction
    if not app.sqlite:  # a failed transaction cannot carry it either
        app.begin()
        with pytest.raises(Exception, match="no_such_table"):
            app.conn.execute("SELECT * FROM no_such_table")
        with pytest.raises(NotInTransaction, match="failed"):
            queue.enqueue("emails", "x", connection=app.conn)
        app.rollback()
    assert [job.payload for job in _jobs(queue)] == ["mine"]
    assert queue.get_job(claimed.id).state is JobState.LEASED


def test_a_driver_in_implicit_transaction_mode_gets_its_transaction_begun(
        queue: Queue, db_path: Path | str) -> None:
    """DB-API's default: sqlite3's isolation_level "" and psycopg's autocommit=False begin a
    transaction at the first write; its commit() or rollback() ends it."""
    if str(db_path).startswith("postgresql://"):
        import psycopg

        conn: Any = psycopg.connect(str(db_path))
    else:
        conn = sqlite3.connect(db_path, timeout=60)
    try:
        for commit in (False, True):
            queue.enqueue("emails", {"commit": commit}, connection=conn)
            conn.commit() if commit else conn.rollback()
    finally:
        conn.close()
    assert [job.payload for job in _jobs(queue)] == [{"commit": True}]


def test_an_object_that_is_no_connection_is_refused(queue: Queue, app: App) -> None:
    for thing in ("postgresql://elsewhere", 42, object()):
        with pytest.raises(WrongConnectionKind):
            queue.enqueue("emails", "x", connection=thing)
    if app.sqlite:
        closed: Any = sqlite3.connect(":memory:")
    else:
        import psycopg

        closed = psycopg.connect(str(queue.db))
        other_kind = sqlite3.connect(":memory:", isolation_level=None)
        other_kind.execute("BEGIN")
        with pytest.raises(WrongConnectionKind, match="SQLite connection.*PostgreSQL"):
            queue.enqueue("emails", "x", connection=other_kind)
        other_kind.close()
    closed.close()
    with pytest.raises(UnusableConnection, match="closed"):
        queue.enqueue("emails", "x", connection=closed)
    assert _jobs(queue) == []


@pytest.mark.sqlite_only
def test_a_sqlite3_connection_of_another_thread_is_refused(queue: Queue, app: App) -> None:
    """sqlite3 refuses a connection made by another thread (``check_same_thread``)."""
    app.begin()
    errors: list[BaseException] = []

    def enqueue() -> None:
        try:
            queue.enqueue("emails", "x", connection=app.conn)
        except BaseException as exc:  # noqa: BLE001 - examined below
            errors.append(exc)

    thread = threading.Thread(target=enqueue)
    thread.start()
    thread.join(60)
    assert len(errors) == 1 and isinstance(errors[0], UnusableConnection)
    assert "thread" in str(errors[0])
    app.rollback()
    assert _jobs(queue) == []


@pytest.mark.postgres
def test_a_psycopg_connection_for_a_sqlite_queue_is_refused(tmp_path: Path,
                                                            pg_url: str) -> None:
    import psycopg

    with Queue(tmp_path / "queue.db") as sqlite_queue, psycopg.connect(pg_url) as conn:
        with pytest.raises(WrongConnectionKind, match="PostgreSQL connection.*SQLite"):
            sqlite_queue.enqueue("emails", "x", connection=conn)
        assert sqlite_queue.list_jobs("emails") == []


def test_no_connection_inside_atomic_and_no_block(queue: Queue, app: App) -> None:
    with pytest.raises(UnusableConnection, match="atomic"), queue.atomic():
        queue.enqueue("emails", "x", connection=app.conn)
    app.begin()
    with pytest.raises(InvalidArgument, match="block"):
        queue.enqueue("emails", "x", block=True, connection=app.conn)
    app.commit()
    assert _jobs(queue) == []


# -- waking consumers -----------------------------------------------------------------------


def test_a_waiting_consumer_wakes_at_the_callers_commit(db_path: Path | str,
                                                        app: App) -> None:
    """SQLite: any connection's commit moves ``PRAGMA data_version``; PostgreSQL: the NOTIFY,
    sent on the caller's connection, is delivered at its commit."""
    producer = Queue(db_path, durability="normal")
    waiter = Queue(db_path, durability="normal")
    waits = threading.Event()
    wait_for_change = waiter.backend.wait_for_change

    def watched_wait(*args: Any, **kwargs: Any) -> bool:
        waits.set()
        return wait_for_change(*args, **kwargs)

    waiter.backend.wait_for_change = watched_wait  # type: ignore[method-assign]
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(
        (waiter.dequeue("emails", wait=60), time.monotonic())))
    try:
        app.begin()
        job = producer.enqueue("emails", "wake up", connection=app.conn)
        thread.start()
        # The waiter has looked (after the uncommitted enqueue), found nothing and waits
        # (on PostgreSQL its first wait only starts to LISTEN, and returns at once).
        for _ in range(1 if app.sqlite else 2):
            assert waits.wait(30), "the consumer never waited"
            waits.clear()
        committed_at = time.monotonic()
        app.commit()
        thread.join(30)
        assert not thread.is_alive(), "the consumer did not wake at the commit"
        claimed, woke_at = got[0]
        assert claimed is not None and claimed.id == job.id
        assert woke_at - committed_at < 10  # woken by the commit, not its 60 s timeout
    finally:
        thread.join(60)
        producer.close()
        waiter.close()
