"""``pq worker --app`` as a real process, given apps that cannot be loaded: a clear error and
exit code 2 (bad input), never an "unexpected" crash."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_packaged_processes import BIN

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def env() -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH, no PQ_* settings."""
    clean = {k: v for k, v in os.environ.items()
             if k != "PYTHONPATH" and not k.startswith("PQ_")}
    return clean | {"PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize(("source", "raised"), [
    ("def broken(:\n", "SyntaxError"),
    ("raise RuntimeError('SMTP_HOST is not set')\n", "RuntimeError: SMTP_HOST is not set"),
    ("import json\njson.loads('{')\n", "JSONDecodeError"),
])
def test_an_app_module_that_fails_to_import_is_bad_input(
        tmp_path: Path, env: dict[str, str], source: str, raised: str) -> None:
    (tmp_path / "brokenapp.py").write_text(source)
    result = subprocess.run(
        [str(BIN / "pq"), "--db", "w.db", "worker", "--app", "brokenapp:q", "--queues", "work",
         "--max-jobs", "1", "--log-dir", ""],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "cannot import app module 'brokenapp'" in result.stderr
    assert raised in result.stderr
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr


def test_a_handler_module_that_fails_to_import_is_bad_input(
        tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "brokenhandler.py").write_text("1 / 0\n")
    result = subprocess.run(
        [str(BIN / "pq"), "--db", "w.db", "worker", "--handler", "brokenhandler:handle",
         "--queue", "work", "--max-jobs", "1", "--log-dir", ""],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "cannot import handler module 'brokenhandler'" in result.stderr
    assert "ZeroDivisionError" in result.stderr
