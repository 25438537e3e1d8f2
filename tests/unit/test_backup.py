"""Backup and restore: the library (persistent_queue.backup) and ``pq backup``/``pq restore``
as an operator runs them (the installed script, one process per call).

Refused input exits 2 with one ``error:`` line and writes nothing; a database in use exits 1.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from persistent_queue import Queue
from persistent_queue.backup import backup, pg_dump_command, restore
from persistent_queue.commands.backup import _Progress
from persistent_queue.errors import BackupRefused, DatabaseInUse
from persistent_queue.storage import queries
from tests.migration_support import at_version
from tests.support import ROOT

pytestmark = pytest.mark.sqlite_only

PQ = ROOT / ".venv" / "bin" / "pq"
if not PQ.exists():  # a virtualenv elsewhere: the script beside this interpreter
    PQ = Path(sys.executable).parent / "pq"
LATEST = len(queries.migrations("sqlite"))


def pq(db: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PQ), "--db", str(db), *args], capture_output=True, text=True,
                          timeout=60)


def refused(done: subprocess.CompletedProcess[str], message: str, code: int = 2) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "queue.db"
    with Queue(path, durability="normal") as q:
        q.enqueue_many("emails", [{"n": n} for n in range(50)])
    return path


def count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])
    finally:
        conn.close()


def test_backup_writes_a_checked_copy_and_reports_jobs_and_size(db: Path, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    result = backup(db, tmp_path / "copy.db", progress=lambda n, total: calls.append((n, total)))
    assert result.jobs == 50 and result.verified and result.schema_version == LATEST
    assert result.bytes == (tmp_path / "copy.db").stat().st_size
    assert calls[-1][0] == calls[-1][1] > 0
    assert [n for n, _ in calls] == sorted(n for n, _ in calls)
    assert count(tmp_path / "copy.db") == 50
    assert not list(tmp_path.glob("*.partial")) and not (tmp_path / "copy.db-wal").exists()


def test_cli_backup_prints_the_result_and_refuses_an_existing_dest(db: Path,
                                                                   tmp_path: Path) -> None:
    dest = tmp_path / "copy.db"
    done = pq(db, "backup", str(dest))
    assert done.returncode == 0, done.stderr
    assert "50 jobs" in done.stdout and "integrity ok" in done.stdout
    assert "copied 100%" in done.stderr
    dest.write_bytes(b"an older backup")
    refused(pq(db, "backup", str(dest)), "exists (pass force to overwrite it)")
    assert dest.read_bytes() == b"an older backup"
    done = pq(db, "backup", "--force", "--quiet", "--no-verify", str(dest))
    assert done.returncode == 0 and done.stderr == "" and "not verified" in done.stdout
    assert count(dest) == 50


@pytest.mark.parametrize("case", ["missing source", "dest in a missing folder",
                                  "source not a database", "source not a queue database",
                                  "dest is a folder", "dest is the database"])
def test_cli_backup_refuses_bad_input(case: str, db: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy.db"
    other = tmp_path / "other.db"
    if case == "missing source":
        refused(pq(tmp_path / "absent.db", "backup", str(dest)), "no database at")
    elif case == "dest in a missing folder":
        refused(pq(db, "backup", str(tmp_path / "absent" / "copy.db")), "does not exist")
    elif case == "source not a database":
        other.write_text("just text, long enough to be read as a header " * 4)
        refused(pq(other, "backup", str(dest)), "is not a SQLite database")
    elif case == "source not a queue database":
        sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
        refused(pq(other, "backup", str(dest)), "is not a persistent-queue database")
    elif case == "dest is a folder":
        refused(pq(db, "backup", str(tmp_path)), "is a folder")
    else:
        refused(pq(db, "backup", "--force", str(db)), "is the database itself")
        refused(pq(db, "backup", "--force", f"{db}-wal"), "is the database itself")
        refused(pq(db, "restore", str(db)), "is the database itself")
        assert count(db) == 50
    assert not dest.exists() and not list(tmp_path.glob("*.partial"))


def test_restore_replaces_the_database_and_keeps_the_old_one(db: Path, tmp_path: Path) -> None:
    backup(db, tmp_path / "copy.db")
    with Queue(db, durability="normal") as q:
        q.enqueue("emails", {"after": "the backup"})
    done = pq(db, "restore", "--quiet", str(tmp_path / "copy.db"))
    assert done.returncode == 0, done.stderr
    kept = list(tmp_path.glob("queue.db.before-restore-*"))
    assert len(kept) == 1 and f"kept as {kept[0]}" in done.stdout
    assert count(db) == 50 and count(kept[0]) == 51
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0


def test_restore_force_deletes_the_replaced_database(db: Path, tmp_path: Path) -> None:
    backup(db, tmp_path / "copy.db")
    result = restore(tmp_path / "copy.db", db, keep_old=False)
    assert result.kept is None and result.jobs == 50
    assert not list(tmp_path.glob("queue.db.before-restore-*"))


def test_restore_after_a_killed_process_keeps_the_commits_of_its_stale_wal(
        db: Path, tmp_path: Path) -> None:
    backup(db, tmp_path / "copy.db")
    killed = subprocess.run([sys.executable, "-c", (
        "import os, signal, sys\n"
        "from persistent_queue import Queue\n"
        "q = Queue(sys.argv[1], durability='full')\n"  # no checkpoint thread in full
        "q.enqueue('emails', {'in': 'the wal only'})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"), str(db)], timeout=60, check=False)
    assert killed.returncode == -9
    assert Path(f"{db}-wal").stat().st_size > 0 and Path(f"{db}-shm").exists()
    result = restore(tmp_path / "copy.db", db)
    assert result.kept is not None and count(result.kept) == 51
    assert not Path(f"{result.kept}-wal").exists() and not Path(f"{result.kept}-shm").exists()
    assert count(db) == 50


def test_two_restores_in_one_second_keep_both_replaced_databases(
        db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backup(db, tmp_path / "copy.db")
    second = time.gmtime()
    monkeypatch.setattr(time, "gmtime", lambda *_: second)
    first = restore(tmp_path / "copy.db", db).kept
    again = restore(tmp_path / "copy.db", db).kept
    assert first is not None and again is not None and first != again
    assert first.exists() and again.exists()


def test_copies_have_a_new_file_s_mode_and_a_restore_keeps_the_database_s_mode_and_owner(
        db: Path, tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    copy = backup(db, tmp_path / "copy.db").path
    assert stat.S_IMODE(copy.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0600
    os.chmod(db, 0o660)
    owner = (65534, 65534) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    os.chown(db, *owner)  # as root: nobody's database, as a service user's would be
    restore(copy, db)
    found = db.stat()
    assert stat.S_IMODE(found.st_mode) == 0o660 and (found.st_uid, found.st_gid) == owner


def test_restore_onto_a_missing_database_puts_the_copy_there(db: Path, tmp_path: Path) -> None:
    result = restore(db, tmp_path / "new.db")
    assert result.kept is None and count(tmp_path / "new.db") == 50


def test_restore_migrates_an_older_backup(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    with at_version("sqlite", old, LATEST - 1):
        pass
    done = pq(tmp_path / "queue.db", "restore", str(old))
    assert done.returncode == 0, done.stderr
    assert f"schema version {LATEST}, migrated from schema version {LATEST - 1}" in done.stdout
    with Queue(tmp_path / "queue.db") as q:
        assert q.schema_version() == LATEST
        q.enqueue("emails", {"works": True})


def test_restore_refuses_a_newer_schema_a_damaged_file_and_other_files(
        db: Path, tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    backup(db, newer)
    sqlite3.connect(newer).execute(f"PRAGMA user_version = {LATEST + 1}").connection.close()
    with pytest.raises(BackupRefused, match=f"has schema version {LATEST + 1}"):
        restore(newer, db)

    damaged = tmp_path / "damaged.db"
    backup(db, damaged)
    conn = sqlite3.connect(damaged)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'jobs'").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(damaged.read_bytes())
    start = (root - 1) * page_size
    data[start + 3: start + 5] = b"\x7f\xff"  # the jobs table's page claims 32,767 cells
    damaged.write_bytes(bytes(data))
    with pytest.raises(BackupRefused, match="fails its integrity check"):
        restore(damaged, db)

    refused(pq(db, "restore", str(tmp_path / "absent.db")), "no database at")
    (tmp_path / "notes.txt").write_text("not a database at all, but long enough " * 4)
    refused(pq(db, "restore", str(tmp_path / "notes.txt")), "is not a SQLite database")
    refused(pq("postgresql://u:secret@localhost/q", "restore", str(damaged)), "pg_restore")
    assert count(db) == 50 and not list(tmp_path.glob("*.before-restore-*"))


def test_restore_is_refused_while_a_worker_heartbeat_is_fresh(db: Path, tmp_path: Path) -> None:
    backup(db, tmp_path / "copy.db")
    with Queue(db, durability="normal") as q:
        q.register_worker("consumer-7", kind="consumer", queues=["emails"])
    with pytest.raises(DatabaseInUse, match="consumer-7"):
        restore(tmp_path / "copy.db", db)
    refused(pq(db, "restore", str(tmp_path / "copy.db")), "consumer-7", code=1)
    assert restore(tmp_path / "copy.db", db, stale_after=0.0).jobs == 50  # a dead heartbeat
    with Queue(db, durability="normal") as q:
        q.stop_worker("consumer-7")
    assert restore(tmp_path / "copy.db", db).jobs == 50


def test_backup_of_postgresql_prints_pg_dump_with_the_password_masked(tmp_path: Path) -> None:
    url = "postgresql://queue:s3cr3t@db.example:5432/jobs?sslmode=require"
    done = pq(url, "backup", str(tmp_path / "jobs.dump"))
    assert done.returncode == 2
    assert done.stdout.strip() == (
        f"pg_dump --format=custom --no-owner --file={tmp_path / 'jobs.dump'} "
        "'--dbname=postgresql://queue:***@db.example:5432/jobs?sslmode=require'")
    assert "s3cr3t" not in done.stdout + done.stderr and "--pg-dump" in done.stderr
    _, argv, env = pg_dump_command(url, "x.dump")
    assert "s3cr3t" not in " ".join(argv) and env == {"PGPASSWORD": "s3cr3t"}
    with pytest.raises(BackupRefused, match="pg_dump"):
        backup(url, tmp_path / "jobs.dump")


def test_progress_is_a_line_per_tenth_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    show = _Progress()
    for written in range(0, 1001, 25):
        show(written, 1000)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"copied {p:3d}% of 1000 B" for p in range(0, 101, 10)]


@pytest.mark.postgres
def test_pg_dump_backs_up_a_postgresql_database(pg_url: str, tmp_path: Path) -> None:
    with Queue(pg_url) as q:
        q.enqueue("emails", {"to": "a@example.com"})
    dest = tmp_path / "jobs.dump"
    done = pq(pg_url, "backup", "--pg-dump", str(dest))
    assert done.returncode == 0, done.stderr
    listing = subprocess.run(["pg_restore", "--list", str(dest)], capture_output=True,
                             text=True, check=True).stdout
    assert "TABLE DATA public jobs" in listing
    refused(pq(pg_url, "backup", "--pg-dump", str(dest)), "exists")
