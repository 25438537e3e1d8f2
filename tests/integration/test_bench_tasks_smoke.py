"""``python -m bench.tasks`` runs end to end on a few jobs (a real worker process included)."""

from __future__ import annotations

import pytest

from bench import tasks as bench_tasks

pytestmark = pytest.mark.e2e


def test_bench_tasks_prints_plain_task_and_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_tasks.main(["--jobs", "50", "--round-trips", "5", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "task/plain" in out
    for measure in ("in process (µs/job)", "round trip p50 (ms)", "round trip p99 (ms)"):
        assert measure in out
