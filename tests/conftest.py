"""Fixtures shared by every test: a real database under tmp_path and a controllable clock."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.support import ROOT, FakeClock, wait_for  # noqa: F401 (re-exported for tests)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "queue.db"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(db_path: Path, clock: FakeClock) -> Iterator[Queue]:
    """A queue on a fresh database whose time only moves with ``clock.advance``."""
    q = Queue(db_path, clock=clock, durability="normal")
    yield q
    q.close()


@pytest.fixture
def real_queue(db_path: Path) -> Iterator[Queue]:
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
