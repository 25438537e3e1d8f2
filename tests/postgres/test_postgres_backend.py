"""Behaviour only the PostgreSQL backend has: URLs and masked passwords, SKIP LOCKED claims,
LISTEN/NOTIFY wake-ups, migrations under an advisory lock, lock timeouts (query plans:
test_pg_query_plans.py).

Runs on the session's throw-away cluster (tests/postgres_support.py).
"""

from __future__ import annotations

import inspect
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from persistent_queue import Queue
from persistent_queue.errors import (
    DatabaseBusy,
    InvalidArgument,
    LeaseLost,
    SchemaTooNew,
    StorageError,
)
from persistent_queue.storage.postgres.connection import PostgresConnections
from persistent_queue.storage.postgres.url import is_postgres_url, mask_url, scrub
from persistent_queue.storage.queries import migrations, queries
from tests.postgres_support import SessionCluster
from tests.support import FakeClock, wait_for

LATEST = len(migrations("postgres"))
Q = queries("postgres")
pytestmark = pytest.mark.postgres


@pytest.fixture
def url(pg_url: str) -> str:
    return pg_url


@pytest.fixture
def pq(url: str) -> Iterator[Queue]:
    q = Queue(url, clock=FakeClock(), durability="normal")
    yield q
    q.close()


def _in_thread(target: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(target()), daemon=True)
    thread.start()
    return thread, result


# -- URLs and passwords ----------------------------------------------------------------------


def test_postgres_urls_are_recognised_and_other_schemes_are_refused(tmp_path: Path) -> None:
    assert is_postgres_url("postgresql://u@h:5432/db") and is_postgres_url("postgres://h/db")
    assert is_postgres_url("PostgreSQL://h/db")
    assert not is_postgres_url(str(tmp_path / "queue.db"))
    assert not is_postgres_url("sqlite:///x.db")
    with pytest.raises(InvalidArgument, match="postgresql://"):
        Queue("mysql://localhost/db")
    with Queue(f"sqlite:///{tmp_path}/q.db") as q:  # the SQLite spellings still work
        assert q.enqueue("q", 1).id == 1


def test_passwords_are_masked_in_urls_and_messages() -> None:
    assert mask_url("postgresql://app:s3cret@db:5432/q") == "postgresql://app:***@db:5432/q"
    assert mask_url("postgres://db/q?sslmode=require&password=s3cret&x=1") == (
        "postgres://db/q?sslmode=require&password=***&x=1")
    assert mask_url("postgresql://app@db/q") == "postgresql://app@db/q"
    url = "postgresql://app:p%40ss@db/q"
    assert "p%40ss" not in scrub(f"failed for {url}", url)
    assert "p@ss" not in scrub("password p@ss rejected", url)
    short = "postgresql://app:b@db/q"  # a short password must not garble other words
    assert scrub("bad value for b", short) == "bad value for ***"


def test_a_malformed_url_is_invalid_input_without_the_password() -> None:
    with pytest.raises(InvalidArgument) as caught:
        Queue("postgresql://app:Sw0rdfish1@[bad/q")
    assert "Sw0rdfish1" not in str(caught.value) and "app:***@" in str(caught.value)


def test_a_refused_connection_is_a_storage_error_without_the_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # held, never listening: a connection to it is refused
        port = sock.getsockname()[1]
        url = f"postgresql://app:TopSecret99@127.0.0.1:{port}/q?connect_timeout=5"
        with pytest.raises(StorageError) as caught:
            Queue(url, busy_timeout=2)
    assert type(caught.value) is StorageError
    assert "TopSecret99" not in str(caught.value) and "app:***@" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_the_queue_repr_never_shows_the_password(pg_session: SessionCluster, url: str) -> None:
    pg_session.admin("ALTER USER postgres PASSWORD 'Hunter2Hunter2'")  # trust auth ignores it
    try:
        with Queue(url.replace("postgres@", "postgres:Hunter2Hunter2@")) as q:
            assert "Hunter2Hunter2" not in repr(q) and "Hunter2Hunter2" not in repr(q.backend)
            facts = q.backend.database_facts()
            assert "Hunter2Hunter2" not in str(facts) and facts["backend"] == "postgresql"
    finally:
        pg_session.admin("ALTER USER postgres PASSWORD NULL")


# -- claims ------------------------------------------------------------------------------------


def test_a_claim_skips_rows_another_transaction_holds_instead_of_waiting(url: str) -> None:
    holder = Queue(url, durability="normal", busy_timeout=30)
    q = Queue(url, durability="normal", busy_timeout=30)
    holder.enqueue_many("q", [{"n": n} for n in range(4)])
    claimed_first = threading.Event()
    release = threading.Event()

    def hold() -> list[int]:
        with holder.atomic():  # the claim's row locks last until this block ends
            ids = [job.id for job in holder.dequeue_many("q", 2)]
            claimed_first.set()
            release.wait(60)
        return ids

    thread, held = _in_thread(hold)
    try:
        assert claimed_first.wait(60)
        started = time.monotonic()
        mine = [job.id for job in q.dequeue_many("q", 4)]
        assert time.monotonic() - started < 10  # did not queue behind the open transaction
    finally:
        release.set()
        thread.join(60)
    assert len(mine) == 2 and set(mine).isdisjoint(held[0])  # type: ignore[arg-type]
    holder.close()
    q.close()


def test_concurrent_claims_from_many_connections_never_share_a_job(url: str) -> None:
    q = Queue(url, durability="normal")
    total = 400
    q.enqueue_many("q", [{"n": n} for n in range(total)])
    claimed: list[int] = []
    lock = threading.Lock()

    def drain() -> None:
        while True:
            jobs = q.dequeue_many("q", 7)
            if not jobs:
                return
            with lock:
                claimed.extend(job.id for job in jobs)
            q.ack_many(jobs)

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(claimed) == total and len(set(claimed)) == total
    assert q.stats()["q"].done == total
    q.close()


def test_batch_enqueue_returns_ids_in_order_and_matching_rows(pq: Queue) -> None:
    jobs = pq.enqueue_many("q", [{"n": n} for n in range(50)], priority=3)
    ids = [job.id for job in jobs]
    assert ids == sorted(ids) and len(set(ids)) == 50
    assert [pq.get_job(i).payload for i in ids] == [{"n": n} for n in range(50)]


def test_a_lock_held_too_long_is_database_busy(url: str) -> None:
    q = Queue(url, durability="normal", busy_timeout=0.3)
    q.enqueue("q", 1)
    job = q.dequeue("q")
    assert job is not None
    with psycopg.connect(url) as other:  # a transaction holding the job's row
        other.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", (job.id,))
        with pytest.raises(DatabaseBusy):
            q.ack(job)
    q.ack(job)  # the lock is gone: the lease is still good
    with pytest.raises(LeaseLost):
        q.ack(job)
    q.close()


def test_a_connection_killed_by_the_server_is_replaced(pg_session: SessionCluster,
                                                       url: str) -> None:
    q = Queue(url, durability="normal")
    q.enqueue("q", 1)
    pid = q.backend.dialect.conn().info.backend_pid  # type: ignore[attr-defined]
    pg_session.admin("SELECT pg_terminate_backend(%s)", (pid,))
    try:
        q.stats()
    except StorageError as exc:  # the first use may learn that the connection died
        assert "connection" in str(exc)
    assert q.stats()["q"].ready == 1
    q.close()


def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone(
    url: str,
) -> None:
    q = Queue(url, durability="normal")
    q.enqueue("q", {"n": 1})
    parent_pid = q.backend.dialect.conn().info.backend_pid  # type: ignore[attr-defined]
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            job = q.dequeue("q")
            if job is not None and q.backend.dialect.conn().info.backend_pid != parent_pid:  # type: ignore[attr-defined]
                q.ack(job)
                code = 0
            q.close()  # must not close the parent's connection
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert q.backend.dialect.conn().info.backend_pid == parent_pid  # type: ignore[attr-defined]
    assert q.stats()["q"].done == 1  # the parent's connection still works
    q.close()


def test_connections_of_finished_threads_are_closed(url: str) -> None:
    q = Queue(url, durability="normal")
    q.enqueue("q", 1)
    for _ in range(15):  # thread-per-task callers: each thread opens its own connection
        thread = threading.Thread(target=q.stats)
        thread.start()
        thread.join(60)
    # Each new thread's first connection closed the connections of the threads before it.
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity "
                           "WHERE datname = current_database()").fetchone()
    assert row is not None and row[0] <= 3, row  # the queue's, the last thread's, this one
    q.close()


# -- wake-ups ----------------------------------------------------------------------------------


def test_a_waiting_consumer_wakes_on_notify_not_on_a_poll(url: str) -> None:
    consumer = Queue(url, durability="normal", poll_interval=10)
    producer = Queue(url, durability="normal")
    producer.create_queue("q")
    backend = consumer.backend
    assert backend.wait_for_change(0, 10) is True  # arms the LISTEN: the caller looks again
    assert backend.wait_for_change(0.05, 10) is False

    thread, result = _in_thread(lambda: consumer.dequeue("q", wait=60))
    wait_for(lambda: _blocked_in_select(thread), message="the consumer waits on the socket")
    started = time.monotonic()
    producer.enqueue("q", {"n": 1})
    thread.join(60)
    latency = time.monotonic() - started
    # A poll every 10 s (first look after 2.5 s) could not be this quick.
    assert latency < 2.0, latency
    assert result and result[0] is not None and result[0].payload == {"n": 1}  # type: ignore[attr-defined]
    consumer.close()
    producer.close()


def _blocked_in_select(thread: threading.Thread) -> bool:
    """Whether ``thread`` sits in the socket wait of ``wait_for_change`` (after arming)."""
    source, first = inspect.getsourcelines(PostgresConnections.wait_for_change)
    line = first + next(i for i, text in enumerate(source) if "waiting.poll(" in text)
    frame = sys._current_frames().get(thread.ident or 0)
    return (frame is not None and frame.f_code.co_name == "wait_for_change"
            and frame.f_lineno == line)


def test_a_notification_before_the_wait_is_not_lost_and_own_commits_do_not_wake(
    url: str,
) -> None:
    consumer = Queue(url, durability="normal")
    producer = Queue(url, durability="normal")
    backend = consumer.backend
    backend.wait_for_change(0, 1)  # listening from here on
    consumer.enqueue("q", 1)  # this connection's own commit
    assert backend.wait_for_change(0.2, 1) is False
    assert consumer.dequeue("q") is not None  # a failed claim would come here...
    producer.enqueue("q", 2)  # ...and work committed before the wait starts
    started = time.monotonic()
    assert backend.wait_for_change(30, 1) is True
    assert time.monotonic() - started < 5
    assert backend.wait_for_change(0.1, 1) is False  # drained: no stale wake-up
    consumer.close()
    producer.close()


def test_a_wait_for_one_queue_sleeps_through_announcements_for_others(url: str) -> None:
    consumer = Queue(url, durability="normal")
    producer = Queue(url, durability="normal")
    backend = consumer.backend
    assert backend.wait_for_change(0, 1, "a") is True  # arms the LISTEN
    for n in range(5):
        producer.enqueue("b", n)
    assert backend.wait_for_change(1.0, 1, "a") is False  # b's work does not wake a's waiter
    assert backend.wait_for_change(30, 1, "b") is True  # ...but was received and kept for b
    started = time.monotonic()
    assert consumer.dequeue("a", wait=0.5) is None  # a wait with a hint still times out
    assert time.monotonic() - started < 10
    consumer.close()
    producer.close()


def test_a_consumer_waiting_on_a_queue_wakes_only_for_that_queue(url: str) -> None:
    consumer = Queue(url, durability="normal", poll_interval=10)
    producer = Queue(url, durability="normal")
    producer.create_queue("a")
    backend = consumer.backend
    wakes: list[bool] = []
    original = backend.wait_for_change

    def counted(timeout: float, poll_interval: float, queue: str | None = None) -> bool:
        changed = original(timeout, poll_interval, queue)
        wakes.append(changed)
        return changed

    backend.wait_for_change = counted  # type: ignore[method-assign]
    thread, result = _in_thread(lambda: consumer.dequeue("a", wait=60))
    wait_for(lambda: _blocked_in_select(thread), message="the consumer waits on the socket")
    for n in range(10):  # ten commits to another queue: ten announcements for "b"
        producer.enqueue("b", n)
    started = time.monotonic()
    producer.enqueue("a", {"n": 1})
    thread.join(60)
    assert time.monotonic() - started < 5
    assert result and result[0] is not None and result[0].payload == {"n": 1}  # type: ignore[attr-defined]
    # The thread's first wait arms its LISTEN (and returns at once); then one wake-up, by
    # its own queue's work, none by the ten announcements for "b".
    assert wakes == [True, True], wakes
    consumer.close()
    producer.close()


def test_resuming_a_paused_queue_wakes_waiting_consumers(url: str) -> None:
    consumer = Queue(url, durability="normal")
    admin = Queue(url, durability="normal")
    admin.enqueue("q", 1)
    admin.pause("q")
    backend = consumer.backend
    backend.wait_for_change(0, 1)
    admin.resume("q")
    assert backend.wait_for_change(30, 1) is True
    consumer.close()
    admin.close()


# -- schema ------------------------------------------------------------------------------------


def test_concurrent_first_opens_migrate_exactly_once(pg_empty_url: str) -> None:
    url = pg_empty_url
    with psycopg.connect(url) as conn:  # a database without the queue's schema
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def open_queue() -> None:
        try:
            barrier.wait(60)
            with Queue(url) as q:
                assert q.schema_version() == LATEST
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_queue) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [row[0] for row in rows] == list(range(1, LATEST + 1))


def test_a_newer_schema_is_refused_and_left_alone(pg_empty_url: str) -> None:
    url = pg_empty_url
    Queue(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (%s, 'from the future', 0)",
                     (LATEST + 1,))
    with pytest.raises(SchemaTooNew, match=f"version {LATEST + 1}"):
        Queue(url)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == (
            LATEST + 1)


def test_quick_check_reports_broken_invariants(pq: Queue) -> None:
    job = pq.enqueue("q", {"n": 1})
    assert pq.check_integrity() == []
    assert pq.backend.database_facts(integrity=True)["integrity"] == "ok"
    with psycopg.connect(pq.db, autocommit=True) as conn:  # a live job also dead-lettered
        conn.execute("INSERT INTO dead_letters (id, queue, priority, payload, attempts, "
                     "created_at, reason, dead_at) VALUES (%s, 'q', 0, '{}', 1, 0, 'x', 0)",
                     (job.id,))
    problems = pq.check_integrity()
    assert problems == [f"job {job.id} is both live and dead-lettered"]
    assert pq.backend.database_facts(integrity=True)["integrity"] == problems[0]


@pytest.mark.parametrize(("durability", "setting"), [("full", "on"), ("normal", "off")])
def test_durability_maps_to_synchronous_commit(url: str, durability: str,
                                               setting: str) -> None:
    with Queue(url, durability=durability) as q:  # type: ignore[arg-type]
        rows = q.backend.execute_read("SHOW synchronous_commit")  # type: ignore[attr-defined]
        assert rows[0]["synchronous_commit"] == setting

