"""Databases at an older schema version, for the tests of a migration: the first migrations
applied and recorded as the library does, on SQLite or PostgreSQL, then rows written in SQL
as that version knew them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from persistent_queue.storage import queries as sql
from persistent_queue.storage.sqlite.connection import _split_statements


@contextmanager
def at_version(backend: str, target: Path | str, version: int) -> Iterator[Any]:
    """A connection to ``target`` with migrations 1 to ``version`` applied and recorded."""
    scripts = sql.migrations("sqlite" if backend == "sqlite" else "postgres")[:version]
    assert [number for number, _, _ in scripts] == list(range(1, version + 1))
    if backend == "sqlite":
        with closing(sqlite3.connect(target, isolation_level=None)) as conn:
            for number, _, script in scripts:
                for statement in _split_statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number:d}")
            yield conn
        return
    import psycopg

    bookkeeping = sql.queries("postgres")
    with psycopg.connect(str(target), autocommit=True) as conn:
        conn.execute(bookkeeping["create_schema_migrations"])
        for number, name, script in scripts:
            conn.execute(script, prepare=False)  # type: ignore[call-overload]
            conn.execute(bookkeeping["record_migration"], {"version": number, "name": name})
        yield conn


def database_at_version(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path, version: int,
    statements: Iterable[str],
) -> Path | str:
    """A new database of ``backend`` (a file under ``tmp_path``, or an empty PostgreSQL
    database) at schema ``version``, with ``statements`` run on it: its path or URL."""
    target: Path | str = (tmp_path / "queue.db" if backend == "sqlite"
                          else str(request.getfixturevalue("pg_empty_url")))
    with at_version(backend, target, version) as conn:
        for statement in statements:
            conn.execute(statement)
    return target
