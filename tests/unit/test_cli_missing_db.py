"""``pq`` commands that only read or act on what exists never create a database.

On a SQLite path that does not exist (a mistyped ``--db``), such a command says so and exits 2,
and no file (nor its WAL) appears; ``init``, ``enqueue`` and the other commands that add
something create it as before. A ``postgresql://`` URL is not a path: it is opened as before.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from persistent_queue.cli import EXIT_USAGE, cli
from tests.support import ROOT

READS = [
    ["stats"], ["stats", "emails"], ["queues", "list"], ["queues", "pause", "q"],
    ["queues", "resume", "q"], ["queues", "update", "q", "--max-attempts", "3"],
    ["queues", "delete", "q", "--force"], ["jobs", "list"], ["jobs", "show", "1"],
    ["jobs", "history", "1"], ["jobs", "cancel", "1"], ["jobs", "delete", "1"],
    ["jobs", "retry", "1"], ["dequeue", "q"], ["ack", "1", "--token", "t"],
    ["nack", "1", "--token", "t"], ["result", "1"], ["dlq", "list"], ["dlq", "redrive", "1"],
    ["dlq", "edit", "1", "--payload", "{}"], ["dlq", "purge", "--yes"], ["workers"],
    ["workers", "prune", "--older-than", "1d"], ["busy"],
    ["doctor"], ["cleanup"], ["topics", "list"], ["topics", "unsubscribe", "t", "q"],
    ["schedules", "list"], ["schedules", "remove", "s"], ["schedules", "run-due"],
]

CREATES = [
    ["init"], ["enqueue", "q", "{}"], ["queues", "create", "q"], ["topics", "subscribe", "t", "q"],
    ["schedules", "add", "s", "q", "{}", "--every", "60"],
]


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_a_read_command_on_a_missing_path_exits_2_and_creates_nothing(
        tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "typo" / "queue.db"
    (tmp_path / "typo").mkdir()
    result = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert result.exit_code == EXIT_USAGE, result.output
    assert f"error: no database at {db}; create it with `pq --db {db} init`" in result.output
    assert list((tmp_path / "typo").iterdir()) == []


def test_a_sqlite_url_to_a_missing_file_is_refused_too(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    result = CliRunner().invoke(cli, ["--db", f"sqlite://{db}", "stats"])
    assert result.exit_code == EXIT_USAGE and "no database at" in result.output
    assert not db.exists()


@pytest.mark.parametrize("args", CREATES, ids=" ".join)
def test_commands_that_add_something_create_the_database(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "new.db"
    result = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert result.exit_code == 0, result.output
    assert db.exists()
    assert CliRunner().invoke(cli, ["--db", str(db), "stats"]).exit_code == 0


def test_read_commands_open_an_existing_database(db_url: str) -> None:
    """On both backends (a postgresql:// URL is never taken for a missing file)."""
    assert CliRunner().invoke(cli, ["--db", db_url, "init"]).exit_code == 0
    for args in (["stats"], ["queues", "list"], ["jobs", "list"], ["workers"]):
        result = CliRunner().invoke(cli, ["--db", db_url, *args])
        assert result.exit_code == 0, (args, result.output)


def test_the_console_script_says_so_without_a_traceback(tmp_path: Path) -> None:
    pq = ROOT / ".venv" / "bin" / "pq"
    if not pq.exists():
        pq = Path(sys.executable).parent / "pq"
    db = tmp_path / "mistyped" / "queue.db"
    done = subprocess.run([str(pq), "--db", str(db), "stats"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == EXIT_USAGE
    assert done.stderr == f"error: no database at {db}; create it with `pq --db {db} init`\n"
    assert not db.parent.exists()
