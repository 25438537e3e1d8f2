"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.task_apps import Workers


@pytest.fixture
def workers(tmp_path: Path, db_url: str, subprocess_env: dict[str, str]) -> Iterator[Workers]:
    """``pq worker --app taskapp:q`` processes on the test's database, stopped at the end."""
    running = Workers(tmp_path, db_url, subprocess_env)
    yield running
    running.stop()
