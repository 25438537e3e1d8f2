"""Fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from persistent_queue.cli import cli

#: Runs ``pq ARGS...`` on the test's database; ``input=`` is its standard input.
Pq = Callable[..., Result]


@pytest.fixture
def pq(db_path: Path | str) -> Pq:
    """``pq --db <the test's database> --durability normal ARGS...``, run in this process."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, ["--db", str(db_path), "--durability", "normal", *args],
                             input=input)

    return run
