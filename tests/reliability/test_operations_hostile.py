"""Hostile tests of the operations of issue 23: ``pq backup``/``pq restore`` driven as an
operator or an attacker would (symlinks, other users, killed copies), and tracing's cost
when it is off.

Each test was written against a fault it found; see docs/RELIABILITY.md.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import site
import sqlite3
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from persistent_queue import Queue
from persistent_queue.backup import backup, restore
from persistent_queue.errors import BackupRefused, DatabaseInUse
from tests.support import ROOT, wait_for
from tests.task_apps import Workers, task, task_app

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


def holding(db: Path) -> subprocess.Popen[str]:
    """Another process with ``db`` open (as a producer, the API or a console has it), until
    its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "open\n"
    return proc


@pytest.fixture
def holder(db: Path) -> Iterator[subprocess.Popen[str]]:
    proc = holding(db)
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


def test_restore_is_refused_while_a_process_has_a_database_deleted_by_hand_open(
        db: Path, tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    # Fault: with no database file, restore asked no one: it deleted the -wal and -shm of a
    # process still running on the deleted file, whose later commits went nowhere.
    copy = tmp_path / "copy.db"
    backup(db, copy)
    db.unlink()
    with pytest.raises(DatabaseInUse, match="another process"):
        restore(copy, db)
    assert not db.exists() and Path(f"{db}-shm").exists()
    holder.communicate("", timeout=30)
    assert restore(copy, db).kept is None and count(db) == 30


def test_backup_and_restore_take_the_database_as_a_sqlite_url(db: Path, tmp_path: Path) -> None:
    # Fault: --db sqlite:///path (as Queue, pq worker and PQ_DB take it) was read as a
    # relative file name: "no database at <cwd>/sqlite:/path", exit 2.
    url, copy = f"sqlite://{db}", tmp_path / "copy.db"
    done = pq(url, "backup", "--quiet", str(copy))
    assert done.returncode == 0 and "30 jobs" in done.stdout, done.stderr
    with Queue(db) as q:
        q.enqueue("emails", {"after": "the backup"})
    done = pq(url, "restore", "--quiet", str(copy))
    assert done.returncode == 0, done.stderr
    assert count(db) == 30 and len(list(db.parent.glob("queue.db.before-restore-*"))) == 1


def test_backup_to_a_long_but_legal_file_name(db: Path, tmp_path: Path) -> None:
    # Fault: the temporary file's name adds 18 characters to DEST's, so a DEST of 238 to 255
    # bytes (a legal name) was refused: "cannot write in ...: File name too long".
    dest = tmp_path / ("é" * 100 + "b" * 46 + ".db")  # 249 bytes
    assert len(os.fsencode(dest.name)) == 249
    assert backup(db, dest).jobs == 30 and count(dest) == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["data", dest.name])
    assert restore(dest, tmp_path / "restored.db").jobs == 30


# -- a destination without hard links ------------------------------------------------------


def test_backup_onto_a_file_system_without_hard_links(db: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Fault: the copy is placed by link() (which fails if DEST appeared meanwhile); on FAT,
    # exFAT or a share without links that fails with EPERM, so every backup onto a USB disk
    # failed ("cannot write"), unless --force. No such file system can be mounted here:
    # link() fails as vfat's does.
    def no_links(src: object, dst: object, **kwargs: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted", str(src), None, str(dst))

    monkeypatch.setattr(os, "link", no_links)
    out = tmp_path / "usb"
    out.mkdir()
    result = backup(db, out / "copy.db")
    assert result.jobs == 30 and count(out / "copy.db") == 30
    assert [p.name for p in out.iterdir()] == ["copy.db"]
    with pytest.raises(BackupRefused, match="exists"):
        backup(db, out / "copy.db")
    assert [p.name for p in out.iterdir()] == ["copy.db"]


# -- a backup cut short --------------------------------------------------------------------


@pytest.mark.parametrize("cut", [50, 4096])
def test_restore_refuses_a_backup_cut_short(cut: int, db: Path, tmp_path: Path) -> None:
    # Fault: a copy missing the last bytes of its last page (a transfer interrupted) was
    # restored: SQLite read the missing bytes as zeros, integrity_check passed, and the last
    # job's payload came back with NUL bytes in it.
    with Queue(db) as q:
        q.enqueue_many("emails", [{"pad": "x" * 1000} for _ in range(500)])
    copy, short = tmp_path / "copy.db", tmp_path / "short.db"
    backup(db, copy)
    short.write_bytes(copy.read_bytes()[:-cut])
    with pytest.raises(BackupRefused, match="cut short"):
        restore(short, db)
    done = pq(db, "restore", "--quiet", str(short))
    assert done.returncode == 2 and "cut short" in done.stderr, done.stderr
    assert count(db) == 530 and not list(db.parent.glob("*before-restore*"))
    assert restore(copy, db).jobs == 530  # the whole copy is fine


STOPPED_WRITER = (  # a consumer stopped inside its write transaction (SIGSTOP)
    "import os, signal, sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)\n"
    "conn.execute('BEGIN IMMEDIATE')\n"
    "conn.execute(\"UPDATE jobs SET state = 'done' WHERE queue = 'emails'\")\n"
    "print('holding', flush=True)\n"
    "os.kill(os.getpid(), signal.SIGSTOP)\n"
    "conn.execute('COMMIT')\n")


@pytest.mark.e2e
def test_backup_while_a_writer_is_stopped_inside_its_transaction(db: Path,
                                                                 tmp_path: Path) -> None:
    # Held: the copy reads one snapshot and never waits for the write lock; the stopped
    # writer's uncommitted change is not in it, and it commits once continued.
    proc = subprocess.Popen([sys.executable, "-c", STOPPED_WRITER, str(db)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "holding\n"
        wait_for(lambda: open(f"/proc/{proc.pid}/stat").read().split(") ")[1][0] == "T",
                 timeout=30, message="the writer stopped")
        started = time.monotonic()
        done = pq(db, "backup", "--quiet", str(tmp_path / "copy.db"))
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - started < 30
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert proc.wait(timeout=30) == 0
    with Queue(tmp_path / "copy.db") as copy:
        assert copy.stats("emails").ready == 30
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM jobs WHERE state = 'done'").fetchone()[0] == 30
    conn.close()


# -- a backup killed mid-copy --------------------------------------------------------------


@pytest.mark.e2e
def test_a_backup_killed_mid_copy_leaves_only_its_partial_file(tmp_path: Path) -> None:
    # Fault: it also left the copy's rollback journal (.partial-journal), which the docs
    # did not name; the copy is a new file, it needs none.
    db = tmp_path / "queue.db"
    with Queue(db, durability="normal") as q:
        for _ in range(6):
            q.enqueue_many("big", [{"pad": "x" * 4000} for _ in range(4000)])
    size = db.stat().st_size
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([str(PQ), "--db", str(db), "backup", "--quiet", str(out / "b.db")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        partial = next(out.glob(".b.db.*.partial"), None)
        with contextlib.suppress(FileNotFoundError):
            if partial is not None and 0 < partial.stat().st_size < size // 2:
                os.kill(proc.pid, signal.SIGKILL)
                break
    else:
        pytest.fail("the copy was never seen under way")
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert [p.name for p in out.iterdir()] == [partial.name]
    assert count(db) == 24_000
    done = pq(db, "backup", "--quiet", str(out / "b.db"))
    assert done.returncode == 0, done.stderr
    assert count(out / "b.db") == 24_000


# -- another user: nobody ------------------------------------------------------------------


def _nobody_python() -> str | None:
    """An interpreter of this Python version that ``nobody`` may run (this one may lie in a
    private home), or None: not root, or no runuser."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return None
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for exe in (sys.executable, f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        done = subprocess.run(["runuser", "-u", "nobody", "--", exe, "-c",
                               "import sys; print(sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=30, check=False)
        if done.returncode == 0 and done.stdout.strip() == str(sys.version_info[:2]):
            return exe
    return None


NOBODY_PQ = (  # pq as another user, from this checkout and this virtualenv's packages
    "import sys; sys.path[:0] = sys.argv[1].split(':'); sys.argv[1:2] = []\n"
    "from persistent_queue.cli import main\n"
    "sys.argv[0] = 'pq'; main()\n")


def pq_as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    exe = _nobody_python()
    if exe is None:
        pytest.skip("needs root, runuser and a Python interpreter nobody may run")
    paths = ":".join([str(ROOT), *site.getsitepackages()])
    return subprocess.run(["runuser", "-u", "nobody", "--", exe, "-c", NOBODY_PQ, paths, *args],
                          capture_output=True, text=True, timeout=60, check=False)


def refused(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert done.stderr.startswith("error: ") and "unexpected" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


@pytest.fixture
def public() -> Iterator[Path]:
    """A folder every user may enter (pytest's tmp_path lies in a private one), with a
    database in ``data/``."""
    folder = Path(tempfile.mkdtemp(prefix="pq-hostile-"))
    folder.chmod(0o755)
    (folder / "data").mkdir()
    with Queue(folder / "data" / "queue.db", durability="normal") as q:
        q.enqueue_many("emails", [{"n": n} for n in range(30)])
    yield folder
    shutil.rmtree(folder)


def test_backup_and_restore_of_a_path_this_user_may_not_reach_say_so(
        db: Path, tmp_path: Path) -> None:
    # Fault: "unexpected PermissionError" (Path.exists() raises it for a folder on the way
    # that this user may not enter).
    tmp_path.chmod(0o700)
    out = Path(tempfile.mkdtemp(prefix="pq-hostile-"))
    try:
        out.chmod(0o777)
        refused(pq_as_nobody("--db", str(db), "backup", str(out / "copy.db")), 2,
                "cannot reach", "Permission denied")
        refused(pq_as_nobody("--db", str(out / "new.db"), "restore", str(db)), 2,
                "cannot reach", "Permission denied")
        assert not list(out.iterdir())
    finally:
        shutil.rmtree(out)


def test_backup_by_a_user_who_cannot_write_the_databases_folder_says_so(public: Path) -> None:
    # Fault: a closed database (no -wal, -shm) read by a user who may not create them was
    # called "not a SQLite database (attempt to write a readonly database)".
    db = public / "data" / "queue.db"
    out = public / "out"
    out.mkdir()
    out.chmod(0o777)
    done = pq_as_nobody("--db", str(db), "backup", str(out / "copy.db"))
    refused(done, 2, "cannot read", "-wal and -shm", str(db.parent))
    assert "not a SQLite database" not in done.stderr
    assert not list(out.iterdir())


def test_restore_by_a_user_who_cannot_lock_the_shm_is_refused_with_a_message(
        public: Path) -> None:
    # Fault: "unexpected PermissionError" (the -shm of the service's user opened for writing).
    db = public / "data" / "queue.db"
    copy = public / "copy.db"
    backup(db, copy)
    db.parent.chmod(0o777)
    proc = holding(db)
    done = pq_as_nobody("--db", str(db), "restore", str(copy))
    proc.communicate("", timeout=30)
    refused(done, 2, "cannot tell whether", "in use", "-shm")
    assert count(db) == 30 and not list(db.parent.glob("*before-restore*"))


def test_restore_in_a_sticky_folder_that_may_not_rename_the_database_says_so(
        public: Path) -> None:
    # Fault: "unexpected PermissionError" from the rename (a sticky folder: only the owner
    # of a file may rename it).
    db = public / "data" / "queue.db"
    copy = public / "copy.db"
    backup(db, copy)
    db.parent.chmod(0o1777)
    for file in db.parent.glob("queue.db*"):  # the database, its -wal and -shm: shared
        file.chmod(0o666)
    done = pq_as_nobody("--db", str(db), "restore", "--quiet", str(copy))
    refused(done, 1, "cannot put the copy in place", "Operation not permitted")
    assert count(db) == 30 and not list(db.parent.glob("*before-restore*"))
    assert not list(db.parent.glob(".*partial*"))


# -- tracing: hostile headers, a crashing child, a worker without the SDK ------------------

TRACED_APP = """
import json, os, signal
from persistent_queue import Queue

q = Queue(os.environ["TASKAPP_DB"])

if os.environ.get("TASKAPP_TRACE"):  # an SDK writing each span as a JSON line
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor, SpanExporter, SpanExportResult)

    class JsonLines(SpanExporter):
        def export(self, spans):
            with open(os.path.join(os.environ["TASKAPP_DIR"], "spans.jsonl"), "a") as out:
                out.write("".join(json.dumps({
                    "name": s.name, "trace_id": f"{s.context.trace_id:032x}",
                    "parent": f"{s.parent.span_id:016x}" if s.parent else None,
                    "attributes": dict(s.attributes), "status": s.status.status_code.name,
                }) + "\\n" for s in spans))
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLines()))
    trace.set_tracer_provider(provider)


@q.task(queue="traced", name="echo")
def echo(n):
    return n


@q.task(queue="traced", name="die", max_attempts=1)
def die():
    os.kill(os.getpid(), signal.SIGKILL)
"""

FORGED = [  # what an attacker may put in a job's headers, each within the header limits
    {"traceparent": "garbage"},
    {"traceparent": "00-" + "f" * 32 + "-" + "f" * 16 + "-01"},
    {"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01"},
    {"traceparent": "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    {"traceparent": "\u00e9" * 1024},
    {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
     "tracestate": ",".join(f"k{i}=v" for i in range(300))[:1024]},
    {"baggage": ",".join(f"k{i}=v{i}" for i in range(300))[:1024]},
    {f"h{i}": "v" for i in range(64)},
]


@pytest.fixture
def traced_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    yield from task_app(TRACED_APP, tmp_path, str(tmp_path / "queue.db"), monkeypatch)


@pytest.mark.e2e
@pytest.mark.parametrize("sdk", [True, False], ids=["sdk", "no-sdk"])
def test_forged_trace_headers_and_a_crashing_child_with_the_process_executor(
        sdk: bool, tmp_path: Path, traced_app: Queue, subprocess_env: dict[str, str]) -> None:
    # Held: forged, malformed and oversized trace context never fails a run (a malformed
    # one starts a new trace), nor does a worker without the SDK; a child killed by
    # SIGKILL ends its run's span with the error status.
    app, db = traced_app, tmp_path / "queue.db"
    ids = [app.enqueue("traced", {"task": "echo", "args": [n], "kwargs": {}}, headers=h).id
           for n, h in enumerate(FORGED)]
    dying = task(app, "die").delay().job.id
    workers = Workers(tmp_path, str(db), subprocess_env)
    if sdk:
        workers.env["TASKAPP_TRACE"] = "1"
    workers.start("--queues", "traced", "--executor", "process")
    try:
        wait_for(lambda: app.stats("traced").done == len(ids) and app.stats("traced").dead,
                 timeout=60, message="every job run, the dying one dead-lettered")
    finally:
        workers.stop()
    assert all(p.returncode == 0 for p in workers.procs), workers.logs()
    assert "Traceback" not in workers.logs()
    assert [app.get_job(i).state.value for i in ids] == ["done"] * len(ids)
    assert [d.id for d in app.dead_letters("traced")] == [dying]
    spans = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()
             ] if sdk else []
    runs = {s["attributes"]["messaging.message.id"]: s for s in spans
            if s["name"] == "process traced"}
    if sdk:
        assert set(runs) == {str(i) for i in [*ids, dying]}
        assert runs[str(dying)]["attributes"]["persistent_queue.job.outcome"] == "dead_lettered"
        assert runs[str(dying)]["status"] == "ERROR"
        assert runs[str(ids[1])]["trace_id"] == "f" * 32  # a well-formed forged parent
        assert all(runs[str(i)]["parent"] is None for i in (ids[0], ids[2], ids[3], ids[4]))


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
