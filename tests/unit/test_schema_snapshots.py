"""The SQL as files: a schema snapshot per dialect, migrations in step, statements loaded once.

``storage/<dialect>/sql/schema.sql`` is what the numbered migrations build; here for SQLite
(PostgreSQL: tests/postgres/test_pg_schema_snapshot.py). The two dialects' migrations carry the
same numbers and names, so that a number means the same change in both.
"""

from __future__ import annotations

import re
import sqlite3

import pytest

from persistent_queue.storage import queries as sql
from persistent_queue.storage.sqlite.connection import _split_statements


def _catalog(conn: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
    """Every table, index and trigger with its SQL, whitespace and comments normalised."""
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                        "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
                        "ORDER BY type, name").fetchall()
    def normal(text: str) -> str:
        return re.sub(r"\s+", " ", re.sub(r"--[^\n]*", "", text)).strip()
    return [(kind, name, table, normal(text)) for kind, name, table, text in rows]


def _apply(script: str) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for statement in _split_statements(script):
        conn.execute(statement)
    return conn


def test_sqlite_migrations_in_order_build_exactly_the_schema_snapshot() -> None:
    migrated = sqlite3.connect(":memory:", isolation_level=None)
    for _number, _name, script in sql.migrations("sqlite"):
        for statement in _split_statements(script):
            migrated.execute(statement)
    snapshot = _apply(sql.schema("sqlite"))
    assert _catalog(migrated) == _catalog(snapshot)
    assert len(_catalog(snapshot)) > 10  # tables, indexes and triggers, not an empty file


def test_both_dialects_have_the_same_migration_numbers_and_names() -> None:
    sqlite = [(number, name) for number, name, _ in sql.migrations("sqlite")]
    postgres = [(number, name) for number, name, _ in sql.migrations("postgres")]
    assert sqlite == postgres


@pytest.mark.parametrize("dialect", sql.DIALECTS)
def test_shared_statements_are_loaded_once_with_the_dialects_placeholders(dialect: str) -> None:
    shared = sql.shared_queries(dialect)
    merged = sql.queries(dialect)
    assert shared and set(shared) <= set(merged)
    placeholder = "%(now)s" if dialect == "postgres" else ":now"
    assert placeholder in merged["insert_event"]
    assert "schema" not in merged  # the snapshot is not a statement file


def test_a_name_defined_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        sql.parse_named_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")


@pytest.mark.parametrize(("text", "expected"), [
    ("SELECT :id", "SELECT %(id)s"),
    ("SELECT x::text FROM t WHERE a = :a", "SELECT x::text FROM t WHERE a = %(a)s"),
    ("SELECT ':kept' || :b", "SELECT ':kept' || %(b)s"),
    ("SELECT 'it''s :kept', :c -- a comment's :kept\n",
     "SELECT 'it''s :kept', %(c)s -- a comment's :kept\n"),
    ("SELECT '%' || :d -- 5%", "SELECT '%%' || %(d)s -- 5%%"),
    ("SELECT 5 % :e", "SELECT 5 %% %(e)s"),
])
def test_placeholders_are_translated_outside_literals_comments_and_casts(
        text: str, expected: str) -> None:
    assert sql.to_pyformat(text) == expected
