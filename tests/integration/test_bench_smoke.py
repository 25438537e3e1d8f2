"""A small run of the benchmark harness (this project and raw SQLite only, no peers).

The full benchmark is `make bench`; this only proves its workloads still run and still catch
duplicates and losses, so a change to the library cannot silently break the measurements.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import concurrent, history, paired, report, workloads  # noqa: E402
from bench.systems import make_payload, seq_of  # noqa: E402

JOBS = 300


def test_verify_counts_duplicates_and_losses() -> None:
    assert workloads.verify([0, 1, 2], 3) == {"acked": 3, "duplicates": 0, "losses": 0}
    assert workloads.verify([0, 0, 2, 2, 2], 4) == {"acked": 5, "duplicates": 3, "losses": 2}
    assert seq_of(make_payload(1234)) == 1234
    assert len(make_payload(7)) == 200


@pytest.mark.slow
def test_harness_measures_this_project_and_raw_sqlite(tmp_path: Path) -> None:
    systems: dict[str, dict[str, object]] = {}
    for key, name in (("pq-normal", "persistent-queue (normal)"),
                      ("raw-normal", "raw SQLite (normal)")):
        result: dict[str, object] = {"name": name, "mode": "normal"}
        result["enqueue"] = workloads.enqueue_per_job(key, str(tmp_path), JOBS)
        result["enqueue_batch"] = workloads.enqueue_batch(key, str(tmp_path), JOBS, 100)
        drained = workloads.drain(key, str(tmp_path), JOBS, 2)
        assert (drained["acked"], drained["duplicates"], drained["losses"]) == (JOBS, 0, 0)
        assert drained["peak_rss_mb"] > 1
        result["drain_2"] = drained
        batch = workloads.claim_ack_batch(key, str(tmp_path), JOBS, 100)
        assert (batch["acked"], batch["duplicates"], batch["losses"]) == (JOBS, 0, 0)
        result["claim_ack_batch"] = batch
        mixed = workloads.mixed(key, str(tmp_path), 40, rate=200.0, consumers=1)
        assert (mixed["acked"], mixed["losses"]) == (40, 0)
        assert 0 <= mixed["p50_ms"] <= mixed["p99_ms"] < 60_000
        result["mixed"] = mixed
        idle = workloads.idle_cpu(key, str(tmp_path), 0.3)
        assert 0 <= idle["cpu_percent"] < 100
        result["idle"] = idle
        systems[key] = result

    lat = history.run(str(tmp_path), done=500, ready=60, samples=20)
    assert all(math.isfinite(lat[f"{label}_{mode}"]["p99_ms"])
               for label in ("empty", "history") for mode in ("normal", "full"))

    text = report.table(systems)
    assert "persistent-queue (normal)" in text and "x)" in text  # ratios to raw SQLite
    path = report.write_json({"meta": {"jobs": JOBS}, "systems": systems, "history": lat},
                             str(tmp_path / "results"))
    assert json.loads(Path(path).read_text())["systems"]["pq-normal"]["drain_2"]["losses"] == 0


def test_concurrent_enqueue_counts_every_job_with_and_without_group_commit(
    tmp_path: Path
) -> None:
    results = {}
    for label, group_commit in (("on", True), ("off", False)):
        result = concurrent.enqueue_threads("pq-full", str(tmp_path), 60, 4, group_commit)
        assert (result["acked"], result["stored"], result["losses"]) == (60, 60, 0)
        assert result["errors"] == []
        results[label] = result
    assert results["off"]["grouped"] == 0
    raw = concurrent.enqueue_threads("raw-normal", str(tmp_path), 60, 3)
    assert (raw["acked"], raw["stored"]) == (60, 60)
    for key, group_commit in (("pq-full", True), ("pq-full", False), ("raw-normal", None)):
        drained = concurrent.drain_threads(key, str(tmp_path), 60, 4, group_commit)
        assert (drained["acked"], drained["duplicates"], drained["losses"]) == (60, 0, 0)
        assert drained["errors"] == []
    text = concurrent.table({"persistent-queue (full, group commit)": {"4": results["on"]},
                             "persistent-queue (full, no group commit)": {"4": results["off"]}})
    assert "group commit / none (full): 4 threads" in text


def test_postgres_rows_are_skipped_with_a_clear_line_without_postgres(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from bench import postgres

    monkeypatch.setenv("PQ_PG_BINDIR", str(tmp_path))  # holds no initdb
    systems = ["pq-normal", "pg-normal", "raw-pg-full", "raw-normal"]
    with postgres.bench_cluster(systems):
        assert not postgres.running()
    assert systems == ["pq-normal", "raw-normal"]
    out = capsys.readouterr().out
    assert "PostgreSQL rows skipped (pg-normal, raw-pg-full)" in out and "initdb" in out


@pytest.mark.slow
def test_harness_measures_postgres_and_raw_psycopg(tmp_path: Path, pg_session: Any) -> None:
    from bench import postgres
    from bench.systems import baseline_of

    assert baseline_of("pg-full") == "raw-pg-full"
    postgres.use_cluster(pg_session.cluster)
    systems: dict[str, dict[str, object]] = {}
    try:
        for key in ("pg-normal", "raw-pg-normal"):
            result: dict[str, object] = {"name": key, "mode": "normal"}
            result["enqueue"] = workloads.enqueue_per_job(key, str(tmp_path), JOBS)
            result["enqueue_batch"] = workloads.enqueue_batch(key, str(tmp_path), JOBS, 100)
            drained = workloads.drain(key, str(tmp_path), JOBS, 2)
            assert (drained["acked"], drained["duplicates"], drained["losses"]) == (JOBS, 0, 0)
            assert drained["errors"] == []
            result["drain_2"] = drained
            batch = workloads.claim_ack_batch(key, str(tmp_path), JOBS, 100)
            assert (batch["acked"], batch["duplicates"], batch["losses"]) == (JOBS, 0, 0)
            result["claim_ack_batch"] = batch
            mixed = workloads.mixed(key, str(tmp_path), 30, rate=200.0, consumers=1)
            assert (mixed["acked"], mixed["losses"]) == (30, 0)
            assert 0 <= mixed["p50_ms"] <= mixed["p99_ms"] < 60_000
            result["mixed"] = mixed
            idle = workloads.idle_cpu(key, str(tmp_path), 0.3)
            assert 0 <= idle["cpu_percent"] < 100  # LISTEN, not a busy poll
            result["idle"] = idle
            systems[key] = result
        rounds = paired.run(str(tmp_path), rounds=1, jobs={"normal": 40, "full": 20},
                            ours_key="pg-{mode}", raw_key="raw-pg-{mode}")
        assert rounds["full"]["drain_2"]["ratio"] > 0  # a drain with a loss would raise
        lat = postgres.history(done=300, ready=60, samples=20)
        assert all(math.isfinite(lat[f"{label}_{mode}"]["p99_ms"])
                   for label in ("empty", "history") for mode in ("normal", "full"))
    finally:
        for name in ("pg-normal", "raw-pg-normal", "pg-full", "raw-pg-full", "history-empty",
                     "history-history"):
            pg_session.cluster.drop_database(postgres._dbname(name))
        postgres.use_cluster(None)

    text = report.table(systems)
    assert "pg-normal" in text and "x)" in text  # ratios to raw psycopg
