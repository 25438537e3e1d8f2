"""Fixtures shared by every test: a real database and a controllable clock.

Every test that uses ``db_path``, ``db_url``, ``queue`` or ``real_queue`` runs twice: on SQLite
(a file under tmp_path) and on PostgreSQL (a fresh database in the session's throw-away
cluster, see tests/postgres_support.py). A test about SQLite itself (PRAGMAs, query plans,
the file) is marked ``sqlite_only`` and runs once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.postgres_support import (  # noqa: F401 (fixtures)
    BACKENDS,
    database_target,
    pg_empty_url,
    pg_fresh_url,
    pg_session,
    pg_url,
    require_postgres,
)
from tests.support import ROOT, FakeClock, wait_for  # noqa: F401 (re-exported for tests)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that needs a database on each backend (SQLite only if so marked)."""
    if "backend" not in metafunc.fixturenames:
        return
    names = ["sqlite"] if metafunc.definition.get_closest_marker("sqlite_only") else BACKENDS
    metafunc.parametrize(
        "backend",
        [pytest.param(n, marks=[pytest.mark.postgres] if n == "postgresql" else []) for n in names],
        indirect=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With ``PQ_REQUIRE_POSTGRES`` set (CI), a skipped PostgreSQL test is a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and item.get_closest_marker("postgres") and require_postgres():
        report.outcome = "failed"
        report.longrepr = f"PQ_REQUIRE_POSTGRES is set, but the test was skipped: {report.longrepr}"


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend under test: ``"sqlite"`` or ``"postgresql"``."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def db_path(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    """The test's database: a file under tmp_path (SQLite) or a fresh PostgreSQL URL."""
    return database_target(backend, tmp_path, request)


@pytest.fixture
def db_url(db_path: Path | str) -> str:
    """The test's database as the string processes take with ``--db``/``PQ_DB``."""
    return str(db_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(db_path: Path | str, clock: FakeClock) -> Iterator[Queue]:
    """A queue on a fresh database whose time only moves with ``clock.advance``."""
    q = Queue(db_path, clock=clock, durability="normal")
    yield q
    q.close()


@pytest.fixture
def real_queue(db_path: Path | str) -> Iterator[Queue]:
    """A queue on a fresh database with the real clock."""
    q = Queue(db_path, durability="normal")
    yield q
    q.close()


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for child Python processes that import the project."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PQ_PYTHON", sys.executable)
    return env
