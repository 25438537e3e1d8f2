"""A small run of the end-to-end benchmark (bench/endtoend.py): this project's systems only.

The whole comparison (`make bench`) needs the peers of bench/.venv, Redis and PostgreSQL; this
runs this project's real `pq worker` processes on SQLite the way the benchmark does and proves
that its counting holds: every job started once, none lost, none duplicated, and that a lost or
repeated job would be seen.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import endtoend  # noqa: E402
from bench import endtoend_report as report  # noqa: E402
from bench.endtoend_peers import common  # noqa: E402


def test_records_count_lost_and_duplicated_jobs(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "records.log"
    monkeypatch.setenv("BENCH_E2E_OUT", str(out))
    run = endtoend.Run("pq-normal", endtoend.SYSTEMS["pq-normal"],
                       {"BENCH_E2E_OUT": str(out)}, tmp_path)
    run.sent = {2: 4}
    for seq in (endtoend.PRIMER, 0, 1, 1, 3):  # 2 lost, 1 twice
        common.record(2, seq, 0)
    common.record(9, 0, 0)  # a job nobody sent counts as duplicated
    assert common.count(str(out)) == 6
    assert run.verify() == {"lost": 1, "duplicated": 2}


def test_goals_compare_with_the_best_peer_and_the_durable_one() -> None:
    def row(key: str, drain: float, cpu: float) -> dict[str, Any]:
        system = endtoend.SYSTEMS[key]
        return {"drain_per_s": drain, "cpu_s_per_1k": cpu, "ours": system.ours,
                "durable": system.durable}

    results = {"pq-normal": row("pq-normal", 3000, 0.3), "pq-full": row("pq-full", 900, 0.5),
               "dramatiq": row("dramatiq", 1500, 0.25),
               "procrastinate": row("procrastinate", 400, 1.5),
               "pg-full": row("pg-full", 2000, 1.0)}
    checks = {c["goal"].split(" (")[0]: c for c in report.goals(results)}
    assert checks["drain, normal >= 1.5x best peer"]["ratio"] == 2.0
    assert checks["drain, normal >= 1.5x best peer"]["holds"]
    assert checks["drain, full >= best durable peer"]["ratio"] == 900 / 400  # procrastinate
    assert not checks["worker CPU per 1k, normal <= lowest peer"]["holds"]  # 0.3 > 0.25
    assert checks["PostgreSQL drain, full >= 4x procrastinate"]["ratio"] == 5.0
    results["pq-normal"].update(p50_ms=1.0, p99_ms=12.5)
    checks = {c["goal"].split(" (")[0]: c for c in report.goals(results)}
    assert checks["enqueue->start p50, normal <= 2 ms"]["holds"]
    assert not checks["enqueue->start p99, normal <= 10 ms"]["holds"]


@pytest.mark.slow
@pytest.mark.e2e
def test_this_projects_workers_run_every_job_once_end_to_end(tmp_path: Path) -> None:
    results = endtoend.run(list(endtoend.OURS), jobs=200, rounds=1, latency_jobs=40,
                           rate=200.0, workdir=tmp_path)
    assert set(results) == {"pq-normal", "pq-full"}
    for key, entry in results.items():
        assert "error" not in entry["rounds"][0], (key, entry["rounds"][0])
        assert entry["rounds"][0]["drained"], key
        assert (entry["lost"], entry["duplicated"]) == (0, 0), key
        assert entry["enqueue_per_s"] > 0 and entry["drain_per_s"] > 0
        assert 0 <= entry["p50_ms"] <= entry["p99_ms"] < 60_000
        assert math.isfinite(entry["cpu_s_per_1k"]) and entry["cpu_s_per_1k"] > 0
    text = report.table(results)
    assert "this project, normal" in text and "0 / 0" in text
