"""The shared, rotated job logs: several processes write, rotation loses nothing."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from persistent_queue import logs
from persistent_queue.logs import PROCESSED_COLUMNS, JobLog

WRITER = """
import sys
from persistent_queue.logs import JobLog
log = JobLog(sys.argv[1], worker=sys.argv[2], max_bytes=4096, backup_count=1000)
for n in range(400):
    log.processed(job_id=n, queue="q", attempt=1, duration=0.01, result="acked")
log.close()
"""


def test_two_processes_rotating_the_same_files_lose_no_row(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"w{i}"],
                              env=subprocess_env) for i in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    files = sorted(p for p in tmp_path.glob("processed_log.csv*") if p.suffix != ".lock")
    assert len(files) > 5  # it rotated many times
    rows = []
    for path in files:
        with path.open() as handle:
            reader = csv.reader(handle)
            assert next(reader) == PROCESSED_COLUMNS  # every file starts with the header
            rows += list(reader)
    assert sorted((r[1], int(r[2])) for r in rows) == sorted(
        (f"w{i}", n) for i in range(2) for n in range(400))


def test_error_entries_keep_the_traceback(tmp_path: Path) -> None:
    log = JobLog(tmp_path, worker="w")
    log.error(job_id=7, queue="q", attempt=2, error="ValueError: x\nTraceback ...\n")
    log.close()
    text = (tmp_path / "error_log.txt").read_text()
    assert "job=7 queue=q attempt=2" in text and "Traceback ..." in text


def test_rows_wait_in_memory_until_due_and_every_row_is_written_by_close(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "FLUSH_INTERVAL", 3600.0)
    log = JobLog(tmp_path, worker="w")
    for n in range(3):
        log.processed(job_id=n, queue="q", attempt=1, duration=0.01, result="acked")
    log.flush(due_only=True)  # not due: nothing written (one write per batch, not per job)
    assert not (tmp_path / "processed_log.csv").exists()
    monkeypatch.setattr(logs, "FLUSH_INTERVAL", 0.0)
    log.flush(due_only=True)
    assert len((tmp_path / "processed_log.csv").read_text().splitlines()) == 1 + 3
    log.processed(job_id=3, queue="q", attempt=1, duration=0.01, result="acked")  # due at once
    monkeypatch.setattr(logs, "FLUSH_INTERVAL", 3600.0)
    log.processed(job_id=4, queue="q", attempt=1, duration=0.01, result="acked")
    log.close()
    with (tmp_path / "processed_log.csv").open() as handle:
        assert [int(row["job_id"]) for row in csv.DictReader(handle)] == [0, 1, 2, 3, 4]
