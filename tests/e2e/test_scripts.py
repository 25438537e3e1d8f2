"""scripts/setup_db.py and the janitor (scripts/cleanup.py) as real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.support import ROOT, wait_for

pytestmark = pytest.mark.e2e


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / name), *args]


def test_setup_db_creates_the_demo_and_is_idempotent(tmp_path: Path,
                                                     subprocess_env: dict[str, str]) -> None:
    db = tmp_path / "data" / "queue.db"
    for _ in range(2):
        done = subprocess.run(script("setup_db.py", "--db", str(db), "--demo"),
                              env=subprocess_env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    assert "queues: emails, reports" in done.stdout
    assert (tmp_path / "data" / "input.txt").exists()
    with Queue(db) as q:
        assert q.get_queue("emails").max_attempts == 3


def test_janitor_cleans_on_schedule_and_stops_on_sigterm(
        real_queue: Queue, db_path: Path, subprocess_env: dict[str, str]) -> None:
    real_queue.enqueue("q", 1)
    claimed = real_queue.dequeue("q")
    assert claimed is not None
    real_queue.ack(claimed)
    proc = subprocess.Popen(script("cleanup.py", "--db", str(db_path), "--older-than", "0",
                                   "--every", "1h"), env=subprocess_env,
                            stdout=subprocess.PIPE, text=True)
    wait_for(lambda: real_queue.list_jobs("q") == [], timeout=60, message="the cleanup")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and time.monotonic() - started < 30
    assert '"done_jobs_removed": 1' in out
    bad = subprocess.run(script("cleanup.py", "--db", str(db_path), "--every", "0"),
                         env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
