"""database_health: what the admin console and probes report about the database file."""

from __future__ import annotations

from pathlib import Path

import pytest

from persistent_queue import Queue
from persistent_queue.health import database_health


@pytest.mark.sqlite_only
def test_reports_sizes_settings_and_schema(real_queue: Queue, db_path: Path) -> None:
    real_queue.enqueue_many("emails", [{"n": n} for n in range(50)])
    before = db_path.stat().st_size
    report = database_health(real_queue)
    after = db_path.stat().st_size  # the checkpoint thread may be copying pages meanwhile
    assert report.path == str(db_path)
    assert 0 < before <= report.file_bytes <= after
    assert report.wal_bytes == Path(f"{db_path}-wal").stat().st_size
    assert 0 < report.free_disk_bytes <= report.total_disk_bytes
    assert report.journal_mode == "wal" and report.auto_vacuum == "INCREMENTAL"
    assert report.synchronous == "NORMAL"  # the fixture's durability="normal"
    assert report.schema_version == real_queue.schema_version() >= 1
    assert report.sqlite_version.count(".") == 2
    assert report.page_count * report.page_size >= report.file_bytes - report.page_size
    assert report.integrity is None and report.ok
    assert report.to_dict()["ok"] is True


def test_integrity_check_on_demand(real_queue: Queue) -> None:
    real_queue.enqueue("emails", {"n": 1})
    report = database_health(real_queue, integrity=True)
    assert report.integrity == "ok" and report.ok


@pytest.mark.sqlite_only  # free disk is the server's business on PostgreSQL
def test_quick_check_and_problems(real_queue: Queue) -> None:
    real_queue.enqueue("emails", {"n": 1})
    report = database_health(real_queue, integrity="quick", min_free_bytes=2**62)
    assert report.integrity == "ok"
    assert not report.ok and report.problems == [report.problems[0]]
    assert "free on the database's disk" in report.problems[0]
    assert report.to_dict()["problems"] == report.problems
