"""The effects drill, short, on both backends: workers whose handler inserts an effect row and
acks with ``connection=`` in one transaction, killed with SIGKILL mid-job again and again,
leave exactly one effect row per job: none missing, none duplicated. (The same drill with
the ack after the effect's own commit, ``--mode separate``, duplicates effects: measured in
docs/transactions.md, not asserted here.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_effects_and_acks_in_one_transaction_survive_kill_9_exactly_once(
        db_url: str, subprocess_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "effects_drill.py"), "--db", db_url,
         "--mode", "joined", "--jobs", "200", "--workers", "3", "--duration", "4",
         "--kill-every", "0.3", "--gap", "0.02", "--visibility-timeout", "1", "--seed", "22",
         "--json"],
        env=subprocess_env, capture_output=True, text=True, timeout=280)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    print(report)  # noqa: T201 - the measurement, shown with -s
    assert done.returncode == 0, report
    assert report["acked"] == 200 and report["lost"] == 0
    assert report["effects_missing"] == 0 and report["effects_duplicated"] == 0
    assert report["workers_killed"] >= 3
    assert report["claimed_more_than_once"] >= 1  # kills did land between claim and ack
