"""A short run of ``python -m bench.http``: pq api under wrk, every 2xx found in the database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WRK = "/usr/bin/wrk"


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.skipif(not os.access(WRK, os.X_OK), reason="no wrk (apt-get install wrk)")
def test_the_http_bench_runs_and_finds_every_acknowledged_job() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.http", "--seconds", "1", "--durability", "normal",
         "--batch", "10", "--connections", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = [line for line in run.stdout.splitlines()
            if line.startswith(("| POST /enqueue", "| batch of 10 "))]
    assert len(rows) == 2, run.stdout
    assert all("LOST" not in row for row in rows)
