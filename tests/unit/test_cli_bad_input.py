"""Bad input to the real ``pq`` command: exit 2 with one readable line, never "unexpected".

Each case runs the installed console script in its own process, as an operator would, and
checks what the README promises: exit code 2 for bad input, an ``error: ...`` message that
says what is wrong, no traceback, and nothing stored.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

PQ = ROOT / ".venv" / "bin" / "pq"
if not PQ.exists():  # a virtualenv elsewhere: the script beside this interpreter
    PQ = Path(sys.executable).parent / "pq"

FIVE_THOUSAND_DIGITS = "1" * 5000
DEEP_OPEN = "[" * 5000
DEEP_CLOSED = "[" * 5000 + "]" * 5000


def pq(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PQ), "--db", str(db), "--durability", "normal", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, message", [
    pytest.param(["schedules", "add", "s", "q", "{}", "--cron", "0 0 30 2 *"],
                 "cron expression '0 0 30 2 *' has no tick", id="cron-february-30"),
    pytest.param(["schedules", "add", "s", "q", "{}", "--cron", "0 0 1 1 1#5"],
                 "cron expression '0 0 1 1 1#5' has no tick", id="cron-fifth-monday-of-jan-1"),
    pytest.param(["schedules", "add", "s", "q", "{}", "--cron", "0 0 1 1 * 0 2020"],
                 "cron expression '0 0 1 1 * 0 2020' has no tick", id="cron-year-in-the-past"),
    pytest.param(["schedules", "add", "s", "q", "{}", "--cron", "0 3 * * *",
                  "--timezone", "Europe"],
                 "unknown time zone 'Europe'", id="timezone-is-a-tzdata-folder"),
    pytest.param(["enqueue", "q", FIVE_THOUSAND_DIGITS],
                 "payload holds an integer outside the 64-bit range", id="5000-digit-payload"),
    pytest.param(["enqueue", "q", DEEP_OPEN],
                 "payload is nested deeper than 64 levels", id="5000-open-brackets"),
    pytest.param(["enqueue", "q", DEEP_CLOSED],
                 "payload is nested deeper than 64 levels", id="5000-nested-lists"),
    pytest.param(["enqueue", "q", "{}", "--header", f"h={DEEP_OPEN}"],
                 "header 'h' is nested deeper than 64 levels", id="deep-header-value"),
    pytest.param(["topics", "publish", "t", FIVE_THOUSAND_DIGITS],
                 "payload holds an integer outside the 64-bit range", id="5000-digit-publish"),
    pytest.param(["schedules", "add", "s", "q", DEEP_CLOSED, "--every", "60"],
                 "payload is nested deeper than 64 levels", id="deep-schedule-payload"),
])
def test_bad_input_exits_2_with_a_readable_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    db = tmp_path / "q.db"
    assert pq(db, "init").returncode == 0

    result = pq(db, *args)

    assert result.returncode == 2, result.stderr
    assert f"error: {message}" in result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    stored = pq(db, "stats", "--json")
    assert stored.returncode == 0 and json.loads(stored.stdout) == []
    listed = pq(db, "schedules", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
