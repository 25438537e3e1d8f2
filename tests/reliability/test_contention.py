"""6. Contention: 8 producers, 8 consumers and 2 console-like readers on one database.

Readers do what the consoles do in a loop (``stats``, ``list_jobs``, ``throughput``,
``workers``, ``dead_letters``). Pass: no exception ("database is locked", ``DatabaseBusy``
or any other) reaches any caller; the checker finds 0 lost, 0 unexpected, no job acked twice
and no two live leases overlapping on one job. Long: 2 minutes; short: 20 s.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.reliability.checker import check, final_rows, integrity_check, read_records
from tests.reliability.soak import report, scale

pytestmark = [pytest.mark.slow]

SECONDS = float(scale(20, 120))
ROLES = ["producer"] * 8 + ["consumer"] * 8 + ["reader"] * 2


def test_contention_reaches_no_caller(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    db = tmp_path / "queue.db"
    out = tmp_path / "out"
    out.mkdir()
    with Queue(db) as q:
        q.create_queue("busy", visibility_timeout=60)
    procs = [subprocess.Popen([sys.executable, "-m", "tests.reliability.contention_child",
                               role, str(db), str(out), str(SECONDS)], env=subprocess_env,
                              stderr=subprocess.PIPE)
             for role in ROLES]
    codes = [p.wait(timeout=SECONDS + 240) for p in procs]
    errors = [p.stderr.read().decode()[-800:] for p in procs if p.stderr and p.returncode]
    for p in procs:
        if p.stderr:
            p.stderr.close()
    assert codes == [0] * len(ROLES), errors
    assert not list(out.glob("errors-*.txt"))
    enqueued = [int(line) for f in out.glob("enqueued-*.txt")
                for line in f.read_text().split()]
    with Queue(db) as q:
        verdict = check(enqueued, read_records(out), final_rows(q, "busy"))
        integrity = integrity_check(db)
    report("contention", seconds=SECONDS, **verdict.summary())
    assert verdict.valid, verdict.summary()
    assert verdict.extra_deliveries == 0  # nobody crashed: each job delivered once
    assert verdict.done == len(read_records(out)) > 100
    assert integrity == "ok"
