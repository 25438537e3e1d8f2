"""Run the consoles in Streamlit's AppTest against a real database under tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from console_helpers import RUN_TIMEOUT, run
from streamlit.testing.v1 import AppTest

from persistent_queue import Queue

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def console_db(db_path: Path | str, monkeypatch: pytest.MonkeyPatch) -> Path | str:
    """The database the consoles under test read (through PQ_DB), without a password: a file
    under tmp_path or a fresh PostgreSQL database."""
    path = db_path
    monkeypatch.setenv("PQ_DB", str(path))
    monkeypatch.delenv("PQ_CONSOLE_PASSWORD", raising=False)
    return path


@pytest.fixture
def db(console_db: Path | str) -> Iterator[Queue]:
    """The library's view of the consoles' database (real clock)."""
    q = Queue(console_db, durability="normal")
    yield q
    q.close()


@pytest.fixture
def open_console(console_db: Path | str) -> Callable[[str], AppTest]:
    """Start ``ops_console.py`` or ``admin_console.py`` and run it once."""

    def start(script: str) -> AppTest:
        return run(AppTest.from_file(str(ROOT / script), default_timeout=RUN_TIMEOUT))

    return start
