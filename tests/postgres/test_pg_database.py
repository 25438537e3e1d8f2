"""PostgreSQL's counterparts of the SQLite-only tests: migrations, durability, locks, health.

The contract suite (every test using ``queue``/``db_path``) already runs on PostgreSQL; these
tests cover what is stated differently for a server: concurrent first opens migrate once under
an advisory lock, ``durability`` maps to ``synchronous_commit``, a held lock is
``DatabaseBusy`` (503 in the API), and health reports server facts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from persistent_queue import DatabaseBusy, Queue, SchemaTooNew
from persistent_queue.api import create_app
from persistent_queue.health import database_health
from persistent_queue.storage import queries as sql
from tests.postgres_support import SessionCluster
from tests.support import open_and_enqueue_together

pytestmark = pytest.mark.postgres

LATEST = len(sql.migrations("postgres"))


def _psycopg_connect(url: str) -> object:
    import psycopg

    return psycopg.connect(url, autocommit=True)


@pytest.fixture
def empty_url(pg_session: SessionCluster) -> Iterator[str]:
    """A database without any table (not copied from the migrated template)."""
    name = pg_session.cluster.create_database()
    yield pg_session.url(name)
    pg_session.drop(name)


def test_processes_opening_an_empty_database_at_once_migrate_it_once(
    empty_url: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    children = open_and_enqueue_together(empty_url, tmp_path, subprocess_env)
    for _, returncode, out, err in children:
        assert returncode == 0, err
        assert out.strip() == str(LATEST)
    with Queue(empty_url) as q:
        assert sorted(job.payload for job in q.list_jobs("q")) == sorted(
            pid for pid, *_ in children)
        rows = q.backend.execute_read(  # type: ignore[attr-defined]
            "SELECT version FROM schema_migrations ORDER BY version")
        assert [row["version"] for row in rows] == list(range(1, LATEST + 1))


def test_a_newer_schema_is_refused_and_left_alone(pg_url: str) -> None:
    conn = _psycopg_connect(pg_url)
    try:
        conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, 'future', 0)",
            (LATEST + 1,))
        with pytest.raises(SchemaTooNew):
            Queue(pg_url)
        count = conn.execute(  # type: ignore[attr-defined]
            "SELECT count(*) FROM schema_migrations WHERE version = %s", (LATEST + 1,))
        assert count.fetchone()[0] == 1
    finally:
        conn.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(("durability", "setting"), [("full", "on"), ("normal", "off")])
def test_durability_maps_to_synchronous_commit(pg_url: str, durability: str,
                                               setting: str) -> None:
    with Queue(pg_url, durability=durability) as q:  # type: ignore[arg-type]
        def read() -> str:
            rows = q.backend.execute_read("SHOW synchronous_commit")  # type: ignore[attr-defined]
            return str(rows[0]["synchronous_commit"])

        assert read() == setting
        seen: list[str] = []
        thread = threading.Thread(target=lambda: seen.append(read()))  # its own connection
        thread.start()
        thread.join(30)
        assert seen == [setting]
        assert database_health(q).synchronous == setting


@pytest.fixture
def table_lock(pg_url: str) -> Iterator[object]:
    """Another session holding an exclusive lock on the jobs table (a long migration)."""
    conn = _psycopg_connect(pg_url)
    conn.execute("BEGIN")  # type: ignore[attr-defined]
    conn.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")  # type: ignore[attr-defined]
    yield conn
    conn.close()  # type: ignore[attr-defined]


def test_a_held_lock_is_database_busy_and_503(pg_url: str, table_lock: object) -> None:
    with Queue(pg_url, durability="normal", busy_timeout=0.2) as queue:
        started = time.monotonic()
        with pytest.raises(DatabaseBusy):
            queue.enqueue("emails", 1)
        assert time.monotonic() - started < 30
        with TestClient(create_app(queue)) as client:
            response = client.post("/enqueue", json={"queue": "emails", "payload": 1})
            assert response.status_code == 503
            assert response.json()["error"] == "database_busy"
            assert response.headers["retry-after"] == "1"
        table_lock.execute("ROLLBACK")  # type: ignore[attr-defined]
        with TestClient(create_app(queue)) as client:
            assert client.post("/enqueue", json={"queue": "emails", "payload": 1}
                               ).status_code == 201


def test_an_uncommitted_batch_neither_blocks_nor_shows_to_consumers(pg_url: str) -> None:
    with Queue(pg_url, durability="normal", busy_timeout=10) as q:
        q.create_queue("empty")
        writer = _psycopg_connect(pg_url)
        try:
            writer.execute("BEGIN")  # type: ignore[attr-defined]
            writer.execute(  # type: ignore[attr-defined]
                "INSERT INTO jobs (queue, state, payload, available_at, created_at, updated_at)"
                " VALUES ('empty', 'ready', '1', 0, 0, 0)")
            started = time.monotonic()
            assert q.dequeue("empty") is None
            assert q.dequeue_many("unknown", 5) == []
            assert time.monotonic() - started < 5  # waiting for the lock would take the 10 s
        finally:
            writer.close()  # type: ignore[attr-defined]


def test_health_reports_server_facts(pg_url: str) -> None:
    with Queue(pg_url, durability="normal") as q:
        q.enqueue_many("emails", [{"n": n} for n in range(50)])
        report = database_health(q, integrity=True)
    assert report.backend == "postgresql" and report.server
    assert report.path == pg_url  # no password in it to mask
    assert report.server_version.split(".")[0].isdigit()
    assert report.file_bytes > 1_000_000  # pg_database_size: catalogs included
    assert report.schema_version == LATEST
    assert 1 <= report.connections <= report.max_connections
    assert report.integrity == "ok" and report.ok and report.problems == []
    assert (report.free_disk_bytes, report.wal_bytes) == (0, 0)  # the server's disk


def test_a_broken_invariant_fails_the_integrity_check(pg_url: str) -> None:
    with Queue(pg_url, durability="normal") as q:
        job = q.enqueue("emails", 1)
        conn = _psycopg_connect(pg_url)
        try:
            # Damage that the schema's own checks would refuse: a hand edit past them.
            conn.execute("ALTER TABLE jobs DROP CONSTRAINT jobs_check")  # type: ignore[attr-defined]
            conn.execute("UPDATE jobs SET state = 'leased' WHERE id = %s",  # type: ignore[attr-defined]
                         (job.id,))
        finally:
            conn.close()  # type: ignore[attr-defined]
        report = database_health(q, integrity=True)
    assert not report.ok
    assert f"job {job.id}" in report.problems[0]
