"""The database file: schema, migrations, journal mode and durability."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from persistent_queue import JobState, Queue, SchemaTooNew
from persistent_queue.storage import queries as sql
from tests.migration_support import at_version
from tests.support import open_and_enqueue_together

MIGRATIONS = sql.migrations("sqlite")
LATEST = len(MIGRATIONS)
TABLES = {"queues", "jobs", "dead_letters", "job_events", "workers", "kv"}


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows if not name.startswith("sqlite_")}


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def schema_dump(path: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))
    finally:
        conn.close()


def test_migrations_are_numbered_from_one() -> None:
    assert [number for number, _, _ in MIGRATIONS] == list(range(1, LATEST + 1))
    assert LATEST >= 1


def test_a_fresh_file_gets_the_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "queue.db"  # parents are created too
    with Queue(path) as q:
        assert q.schema_version() == LATEST
    assert TABLES <= tables(path)
    assert user_version(path) == LATEST
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    finally:
        conn.close()


@pytest.mark.sqlite_only
def test_reopening_a_current_file_changes_nothing(db_path: Path) -> None:
    with Queue(db_path) as q:
        job = q.enqueue("q", 1)
    before = schema_dump(db_path)
    with Queue(db_path) as q:
        assert q.get_job(job.id).state is JobState.READY
    assert schema_dump(db_path) == before


@pytest.mark.sqlite_only
def test_a_version_0_database_without_tables_is_migrated_on_open(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE unrelated (x)")  # a real, non-empty SQLite file at version 0
    conn.commit()
    conn.close()
    assert user_version(db_path) == 0

    with Queue(db_path) as q:
        assert q.schema_version() == LATEST
        job = q.enqueue("q", {"after": "migration"})
        claimed = q.dequeue("q")
        assert claimed is not None and claimed.id == job.id
    assert TABLES | {"unrelated"} <= tables(db_path)


@pytest.mark.parametrize("applied", range(LATEST))
def test_a_partly_migrated_database_is_brought_up_to_date(tmp_path: Path, applied: int) -> None:
    fresh, old = tmp_path / "fresh.db", tmp_path / "old.db"
    with Queue(fresh):
        pass
    with at_version("sqlite", old, applied):
        pass

    with Queue(old) as q:
        assert q.schema_version() == LATEST
    # the migrated schema is the fresh schema
    assert schema_dump(old) == schema_dump(fresh)


@pytest.mark.sqlite_only
def test_a_newer_schema_is_refused_and_left_alone(db_path: Path) -> None:
    with Queue(db_path) as q:
        q.enqueue("q", 1)
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.commit()
    conn.close()
    before = schema_dump(db_path)

    with pytest.raises(SchemaTooNew, match=f"version {LATEST + 1}"):
        Queue(db_path)

    assert user_version(db_path) == LATEST + 1
    assert schema_dump(db_path) == before


@pytest.mark.sqlite_only
@pytest.mark.parametrize(("durability", "synchronous"), [("full", 2), ("normal", 1)])
def test_durability_maps_to_synchronous(
    db_path: Path, durability: str, synchronous: int
) -> None:
    with Queue(db_path, durability=durability) as q:  # type: ignore[arg-type]
        assert q.backend.execute_read("PRAGMA synchronous")[0][0] == synchronous  # type: ignore[attr-defined]
        seen: list[int] = []
        thread = threading.Thread(  # every thread's own connection too
            target=lambda: seen.append(
                q.backend.execute_read("PRAGMA synchronous")[0][0]))  # type: ignore[attr-defined]
        thread.start()
        thread.join(30)
        assert seen == [synchronous]


@pytest.mark.sqlite_only
def test_full_durability_is_the_default(db_path: Path) -> None:
    with Queue(db_path) as q:
        assert q.durability == "full"
        assert q.backend.execute_read("PRAGMA synchronous")[0][0] == 2  # type: ignore[attr-defined]


def test_a_closed_queue_refuses_to_work(db_path: Path) -> None:
    from persistent_queue import StorageError

    q = Queue(db_path)
    q.close()
    with pytest.raises(StorageError):
        q.enqueue("q", 1)


@pytest.mark.parametrize("round_", range(2))
def test_processes_opening_a_fresh_file_at_once_all_succeed(
    tmp_path: Path, subprocess_env: dict[str, str], round_: int
) -> None:
    db = tmp_path / "race.db"
    children = open_and_enqueue_together(str(db), tmp_path, subprocess_env)

    for _, returncode, out, err in children:
        assert returncode == 0, err
        assert out.strip() == str(LATEST)
    with Queue(db) as q:
        assert sorted(job.payload for job in q.list_jobs("q")) == sorted(
            pid for pid, *_ in children)


def test_a_file_that_is_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    from persistent_queue import StorageError

    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the pages you are looking for\n" * 100)
    with pytest.raises(StorageError, match="not a database"):
        Queue(path)
    assert path.read_bytes().startswith(b"these are not")
