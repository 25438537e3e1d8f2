"""The crash drill, short: kill -9 consumers mid-job; nothing may be lost."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_short_drill_with_a_poison_job_loses_nothing(
    db_url: str, subprocess_env: dict[str, str]
) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "simulate_crash.py"), "--db", db_url,
         "--jobs", "120",
         "--consumers", "2", "--concurrency", "2", "--duration", "3", "--kill-every", "0.5",
         "--job-seconds", "0.1", "--visibility-timeout", "1", "--poison", "--seed", "7",
         "--json"],
        env=subprocess_env, capture_output=True, text=True, timeout=280)
    report = json.loads(done.stdout)
    assert done.returncode == 0, report
    assert report["lost"] == 0 and report["still_pending"] == 0
    assert report["acked"] == 120 and report["dead_lettered"] == 1
    assert report["consumers_killed"] >= 3
    assert report["poison_job"]["dead_lettered"] and report["poison_job"]["attempts"] == 3
    assert report["integrity_check"] == "ok"
    assert set(report["warm_stop_exit_codes"]) == {0}
