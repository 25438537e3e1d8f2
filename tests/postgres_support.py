"""PostgreSQL for the tests: one throw-away cluster per session, one fresh database per test.

The cluster starts lazily, the first time a PostgreSQL test runs, and is stopped and removed
at the end of the session (also on Ctrl-C). Each test gets a database copied from a template
that is already migrated, so no test pays for ``initdb`` or the migrations.

Without PostgreSQL programs the PostgreSQL tests are skipped, unless ``PQ_REQUIRE_POSTGRES``
is set (CI sets it): then they fail, so a broken setup cannot pass as green.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import pg_cluster  # noqa: E402

BACKENDS = ("sqlite", "postgresql")
TEMPLATE = "pq_template"


def require_postgres() -> bool:
    """Whether PostgreSQL tests must run (fail rather than skip when it is missing)."""
    return os.environ.get("PQ_REQUIRE_POSTGRES", "").strip() not in ("", "0", "false", "no")


#: Why PostgreSQL tests cannot run here, or None.
unavailable_reason = pg_cluster.unavailable_reason


#: Every table's rows go, every sequence restarts: the database is as copied from the template.
WIPE = """
DO $$
DECLARE r record;
BEGIN
    SET LOCAL session_replication_role = replica;  -- no triggers or FK checks while wiping
    FOR r IN SELECT c.oid::regclass AS t FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
               AND c.relname <> 'schema_migrations' LOOP
        EXECUTE format('DELETE FROM %s', r.t);
    END LOOP;
    FOR r IN SELECT c.oid::regclass AS s FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S' LOOP
        EXECUTE format('ALTER SEQUENCE %s RESTART', r.s);
    END LOOP;
END $$
"""

#: A digest of the schema (columns, constraints, indexes, triggers, functions, migrations):
#: a test that changed it leaves a database that is dropped rather than reused.
FINGERPRINT = """
SELECT md5(string_agg(x, E'\n' ORDER BY x)) FROM (
    SELECT 'a ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'c ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'i ' || pg_get_indexdef(indexrelid) FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL
    SELECT 't ' || tgrelid::regclass || ' ' || tgname || ' ' || tgenabled::text FROM pg_trigger
    WHERE NOT tgisinternal
    UNION ALL
    SELECT 'f ' || p.oid::regprocedure || ' ' || md5(p.prosrc) FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'm ' || version FROM schema_migrations
    UNION ALL
    SELECT 'r ' || count(*) FROM pg_class
    WHERE relnamespace = 'public'::regnamespace
) AS parts(x)
"""

#: Rows in these template tables would be lost by a wipe: then every test gets a new copy.
SEEDED = """
SELECT string_agg(relname, ', ') FROM pg_class
WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
  AND relname <> 'schema_migrations' AND reltuples > 0
"""


class SessionCluster:
    """The session's cluster, its migrated template and a pool of databases to reuse.

    A test gets a database copied from the template (``CREATE DATABASE ... TEMPLATE``, about
    0.1-0.5 s on a busy machine). Afterwards its sessions are ended, every row is deleted and
    every sequence restarted (a few ms) and, if its schema still matches the template's, it
    goes back to the pool for the next test; otherwise it is dropped.
    """

    def __init__(self, cluster: pg_cluster.Cluster) -> None:
        self.cluster = cluster
        self._template_ready = False
        self._fingerprint: str | None = None
        self._reuse = True
        self._idle: list[str] = []

    def _connect(self, name: str) -> Any:
        import psycopg

        return psycopg.connect(self.cluster.url(name), autocommit=True, connect_timeout=30)

    def _ensure_template(self) -> None:
        if self._template_ready:
            return
        from persistent_queue import Queue

        self.cluster.create_database(TEMPLATE)
        Queue(self.cluster.url(TEMPLATE)).close()  # migrate once; every copy starts migrated
        with self._connect(TEMPLATE) as conn:
            conn.execute("ANALYZE")
            seeded = conn.execute(SEEDED).fetchone()[0]
            self._fingerprint = conn.execute(FINGERPRINT).fetchone()[0]
        self._reuse = not seeded and os.environ.get("PQ_PG_FRESH_DATABASES") != "1"
        self._template_ready = True

    def new_database(self, *, reuse: bool = True) -> str:
        """A migrated database holding no rows; returns its name. ``reuse=False`` always
        copies the template (no dead rows or grown indexes left by an earlier test: for
        query plans)."""
        self._ensure_template()
        if self._idle and reuse:
            return self._idle.pop()
        return self.cluster.create_database(template=TEMPLATE)

    def url(self, name: str) -> str:
        return self.cluster.url(name)

    def release(self, name: str) -> None:
        """Wipe the database for the next test, or drop it if it cannot be reused."""
        if self._reuse:
            try:
                self.cluster.end_sessions(name)
                with self._connect(name) as conn:
                    conn.execute("SET lock_timeout = '30s'")
                    conn.execute(WIPE)
                    same = conn.execute(FINGERPRINT).fetchone()[0] == self._fingerprint
                if same:
                    self._idle.append(name)
                    return
            except Exception:  # anything odd: a fresh copy next time
                pass
        self.drop(name)

    def drop(self, name: str) -> None:
        self.cluster.drop_database(name)

    def empty_database(self) -> str:
        """A new database without the queue's schema (not a template copy); returns its name.
        Drop it with :meth:`drop`: it never goes back to the pool."""
        return self.cluster.create_database()

    def admin(self, statement: str, params: tuple[Any, ...] | None = None) -> None:
        """Run one statement as the superuser on the ``postgres`` database (``ALTER USER``,
        ``pg_terminate_backend``, ...)."""
        self.cluster.execute(statement, params)


def lock_waits(url: str) -> int:
    """Sessions of the database at ``url`` blocked on a row or table lock."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND wait_event_type = 'Lock'").fetchone()
    return 0 if row is None else int(row[0])


@pytest.fixture(scope="session")
def pg_session() -> Iterator[SessionCluster]:
    """The session's PostgreSQL cluster (started on first use)."""
    reason = unavailable_reason()
    if reason is not None:
        if require_postgres():
            pytest.fail(f"PQ_REQUIRE_POSTGRES is set but PostgreSQL cannot run: {reason}")
        pytest.skip(f"PostgreSQL not available: {reason}")
    with pg_cluster.throwaway_cluster() as cluster:
        yield SessionCluster(cluster)


@pytest.fixture
def pg_url(pg_session: SessionCluster) -> Iterator[str]:
    """The URL of a migrated PostgreSQL database without rows, wiped or dropped afterwards."""
    name = pg_session.new_database()
    yield pg_session.url(name)
    with contextlib.suppress(Exception):
        pg_session.release(name)


@pytest.fixture
def pg_fresh_url(pg_session: SessionCluster) -> Iterator[str]:
    """As ``pg_url``, but always a new copy of the template (never a wiped database that an
    earlier test used): for tests of query plans, which dead rows and grown indexes sway."""
    name = pg_session.new_database(reuse=False)
    yield pg_session.url(name)
    with contextlib.suppress(Exception):
        pg_session.release(name)


@pytest.fixture
def pg_empty_url(pg_session: SessionCluster) -> Iterator[str]:
    """The URL of a new database without the queue's schema (first opens migrate it), dropped
    afterwards: for tests of the migrations themselves."""
    name = pg_session.empty_database()
    yield pg_session.url(name)
    with contextlib.suppress(Exception):
        pg_session.drop(name)


@contextlib.contextmanager
def fresh_database(backend: str, request: pytest.FixtureRequest) -> Iterator[Path | str]:
    """A new empty database for each example of a property test (the ``db_path`` fixture
    gives one per test)."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="pq-example-") as folder:
            yield Path(folder) / "queue.db"
        return
    session: SessionCluster = request.getfixturevalue("pg_session")
    name = session.new_database()
    try:
        yield session.url(name)
    finally:
        session.release(name)


def database_target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    """What a test passes as ``--db``/``Queue(...)``: a file path or a PostgreSQL URL."""
    if backend == "sqlite":
        return tmp_path / "queue.db"
    return str(request.getfixturevalue("pg_url"))
