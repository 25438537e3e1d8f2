"""``python -m bench.executors`` runs end to end on a few jobs (real child processes)."""

from __future__ import annotations

import pytest

from bench import executors as bench_executors

pytestmark = pytest.mark.e2e


def test_bench_executors_prints_both_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_executors.main(["--jobs", "40", "--rounds", "1", "--replacements", "2"]) == 0
    out = capsys.readouterr().out
    for heading in ("no-op jobs per second", "process/thread", "replacement (ms)",
                    "forkserver", "spawn"):
        assert heading in out
