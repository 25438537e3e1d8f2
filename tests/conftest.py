"""Fixtures shared by every test: a real database under tmp_path and a controllable clock."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from persistent_queue import Queue

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_for(
    condition: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Poll ``condition`` until it returns a truthy value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


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
