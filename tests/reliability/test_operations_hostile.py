"""Hostile tests of the operations of issue 23: ``pq backup``/``pq restore`` driven as an
operator or an attacker would (symlinks, other users, killed copies), and tracing's cost
when it is off.

Each test was written against a fault it found; see docs/RELIABILITY.md.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from persistent_queue import Queue
from persistent_queue.backup import backup, restore
from persistent_queue.errors import BackupRefused, DatabaseInUse
from tests.support import ROOT

pytestmark = pytest.mark.sqlite_only

PQ = ROOT / ".venv" / "bin" / "pq"
if not PQ.exists():  # a virtualenv elsewhere: the script beside this interpreter
    PQ = Path(sys.executable).parent / "pq"

HOLD = (  # a process that keeps the database open (a read, so SQLite maps its -shm)
    "import sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1])\n"
    "conn.execute('SELECT count(*) FROM jobs').fetchone()\n"
    "print('open', flush=True)\n"
    "sys.stdin.read()\n")


def pq(db: Path | str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PQ), "--db", str(db), *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


def count(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "queue.db"
    with Queue(path, durability="normal") as q:
        q.enqueue_many("emails", [{"n": n} for n in range(30)])
    return path


@pytest.fixture
def holder(db: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process with ``db`` open (as a producer, the API or a console has it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "open\n"
    yield proc
    proc.communicate("", timeout=30)


# -- a database named through a symlink ----------------------------------------------------


@pytest.mark.parametrize("link", ["file", "folder"])
def test_restore_through_a_symlink_is_refused_while_the_database_is_open(
        link: str, db: Path, tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    # Fault: restore looked for the -shm beside the link (none: "nobody has it open"), then
    # renamed the link aside and put a new file in its place, while a process went on
    # writing the real database.
    copy = tmp_path / "copy.db"
    backup(db, copy)
    if link == "file":
        named = tmp_path / "current.db"
        named.symlink_to(db)
    else:
        (tmp_path / "live").symlink_to(db.parent, target_is_directory=True)
        named = tmp_path / "live" / db.name
    with pytest.raises(DatabaseInUse):
        restore(copy, named)
    done = pq(named, "restore", str(copy))
    assert done.returncode == 1 and "in use" in done.stderr, done.stderr
    assert named.resolve() == db.resolve() and count(db) == 30
    assert not list(tmp_path.glob("**/*before-restore*"))


def test_restore_through_a_symlink_replaces_the_database_and_keeps_the_link(
        db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    backup(db, copy)
    with Queue(db) as q:
        q.enqueue("emails", {"after": "the backup"})
    named = tmp_path / "current.db"
    named.symlink_to(db)
    result = restore(copy, named)
    assert named.is_symlink() and count(named) == 30
    assert result.kept is not None and result.kept.parent == db.parent
    assert not result.kept.is_symlink() and count(result.kept) == 31


def test_backup_refuses_the_databases_wal_named_through_a_symlinked_folder(
        db: Path, tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    # Fault: the -wal check compared paths as written, so --force could rename a copy over
    # the live WAL of a database named through a symlinked folder.
    (tmp_path / "live").symlink_to(db.parent, target_is_directory=True)
    wal = Path(f"{db}-wal")
    assert wal.exists()
    with pytest.raises(BackupRefused, match="the database itself"):
        backup(tmp_path / "live" / db.name, f"{db}-wal", force=True)
    with pytest.raises(BackupRefused, match="the database itself"):
        backup(db, tmp_path / "live" / f"{db.name}-wal", force=True)
    assert wal.exists() and count(db) == 30


# -- tracing, off --------------------------------------------------------------------------


def _cost(call: Callable[[], object], n: int = 20_000) -> float:
    """Seconds per call: the quickest of five rounds (a loaded machine slows some)."""
    return min(timeit.timeit(call, number=n) for _ in range(5)) / n


def test_tracing_off_costs_one_check_with_opentelemetry_imported_but_unconfigured(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Fault: with the OpenTelemetry API imported (by the application or a library) and no
    # provider set, each enqueue and run asked get_tracer_provider(), which looks the
    # environment up: 3.7 us a call instead of 0.13 (29x), where the docs promise one check.
    from opentelemetry import trace

    from persistent_queue import tracing

    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert not tracing.active()
    imported = _cost(tracing.active)
    monkeypatch.delitem(sys.modules, "opentelemetry.trace")
    assert not tracing.active()
    bare = _cost(tracing.active)
    assert imported < 5 * bare, (imported, bare)
