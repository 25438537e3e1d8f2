"""PostgreSQL's schema snapshot: the numbered migrations, applied in order to an empty
database, give exactly the schema that ``storage/postgres/sql/schema.sql`` gives (compared as
the catalog sees them: columns, constraints, indexes, triggers and functions)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import pytest

from persistent_queue.storage import queries as sql
from tests.postgres_support import SessionCluster

#: Every object of the public schema, one normalised line each (schema_migrations, the
#: bookkeeping table the library creates outside the numbered migrations, left out).
CATALOG = """
SELECT 'a ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' ' || a.attnotnull || ' ' || a.attidentity::text || ' '
       || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'v') AND c.relname <> 'schema_migrations'
UNION ALL
SELECT 'c ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  AND conrelid <> 'schema_migrations'::regclass
UNION ALL
SELECT 'i ' || pg_get_indexdef(indexrelid) FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = 'public'::regnamespace
  AND i.indrelid <> 'schema_migrations'::regclass
UNION ALL
SELECT 't ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'f ' || p.oid::regprocedure || ' ' || md5(p.prosrc) FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace
ORDER BY 1
"""


@pytest.fixture
def two_empty_databases(pg_session: SessionCluster) -> Iterator[tuple[str, str]]:
    names = [pg_session.empty_database(), pg_session.empty_database()]
    yield pg_session.url(names[0]), pg_session.url(names[1])
    for name in names:
        with contextlib.suppress(Exception):
            pg_session.drop(name)


def _catalog(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer)")
        return [row[0] for row in conn.execute(CATALOG)]


def test_postgres_migrations_in_order_build_exactly_the_schema_snapshot(
        two_empty_databases: tuple[str, str]) -> None:
    migrated_url, snapshot_url = two_empty_databases
    with psycopg.connect(migrated_url, autocommit=True) as conn:
        for _number, _name, script in sql.migrations("postgres"):
            conn.execute(script, prepare=False)  # type: ignore[call-overload]
    with psycopg.connect(snapshot_url, autocommit=True) as conn:
        conn.execute(sql.schema("postgres"), prepare=False)  # type: ignore[call-overload]
    migrated = _catalog(migrated_url)
    assert migrated == _catalog(snapshot_url)
    assert sum(line.startswith("t ") for line in migrated) >= 3  # triggers, not an empty file
