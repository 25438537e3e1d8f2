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
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import pg_cluster  # noqa: E402

BACKENDS = ("sqlite", "postgresql")
TEMPLATE = "pq_template"


def require_postgres() -> bool:
    """Whether PostgreSQL tests must run (fail rather than skip when it is missing)."""
    return os.environ.get("PQ_REQUIRE_POSTGRES", "").strip() not in ("", "0", "false", "no")


def unavailable_reason() -> str | None:
    """Why PostgreSQL tests cannot run here, or None."""
    try:
        pg_cluster.find_bindir()
    except pg_cluster.PostgresUnavailable as exc:
        return str(exc)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    return None


class SessionCluster:
    """The session's cluster and its migrated template database."""

    def __init__(self, cluster: pg_cluster.Cluster) -> None:
        self.cluster = cluster
        self._template_ready = False

    def _ensure_template(self) -> None:
        if self._template_ready:
            return
        from persistent_queue import Queue

        self.cluster.create_database(TEMPLATE)
        Queue(self.cluster.url(TEMPLATE)).close()  # migrate once; every copy starts migrated
        self._template_ready = True

    def new_database(self) -> str:
        """A fresh, migrated database; returns its name."""
        self._ensure_template()
        return self.cluster.create_database(template=TEMPLATE)

    def url(self, name: str) -> str:
        return self.cluster.url(name)

    def drop(self, name: str) -> None:
        self.cluster.drop_database(name)


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
    """The URL of a fresh, migrated PostgreSQL database, dropped after the test."""
    name = pg_session.new_database()
    yield pg_session.url(name)
    with contextlib.suppress(Exception):
        pg_session.drop(name)


def database_target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    """What a test passes as ``--db``/``Queue(...)``: a file path or a PostgreSQL URL."""
    if backend == "sqlite":
        return tmp_path / "queue.db"
    return str(request.getfixturevalue("pg_url"))
