"""Background checkpoints: in normal durability a thread of each process copies the WAL into
the database file.

The writers' own automatic checkpoint is only a backstop, so an enqueue, claim or ack does not
stop to copy pages and wait for fsyncs. Full durability keeps SQLite's own checkpoints. These
tests read the database file alone (a copy made without its WAL) to see what has been
checkpointed into it.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from persistent_queue import Queue
from persistent_queue.config import WAL_SIZE_LIMIT
from persistent_queue.storage.sqlite import checkpointer as checkpointer_module
from persistent_queue.storage.sqlite.checkpointer import BACKSTOP_PAGES, Checkpointer
from tests.support import wait_for

pytestmark = pytest.mark.sqlite_only


def jobs_in_database_file(db: Path, scratch: Path) -> int:
    """Jobs stored in the database file itself, leaving out what is only in the WAL."""
    copy = scratch / "copy.db"
    # Copied by another process: closing a descriptor of the database file in this one would
    # release the POSIX locks SQLite holds on it here.
    subprocess.run(["cp", str(db), str(copy)], check=True, timeout=60)
    try:
        conn = sqlite3.connect(f"file:{copy}?immutable=1", uri=True)
        try:
            return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError:  # copied mid-checkpoint, or the table not copied yet
        return -1


def checkpointer_of(q: Queue) -> Checkpointer:
    found = q.backend.dialect._checkpointer  # type: ignore[attr-defined]
    assert found is not None
    return found


def test_the_thread_copies_a_burst_into_the_database_file(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with Queue(db, durability="normal") as q:
        q.enqueue_many("work", [{"n": n} for n in range(200)])
        wait_for(lambda: jobs_in_database_file(db, scratch) == 200, timeout=30,
                 message="the 200 jobs never reached the database file")
        assert checkpointer_of(q).checkpoints >= 1


def test_without_the_thread_writers_leave_the_burst_in_the_wal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The premise of the test above: 200 jobs are far below the writers' own backstop."""
    monkeypatch.setattr(Checkpointer, "start", lambda self: None)
    db = tmp_path / "q.db"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with Queue(db, durability="normal") as q:
        for n in range(200):
            q.enqueue("work", {"n": n})
        assert jobs_in_database_file(db, scratch) in (0, -1)
        conn = q.backend.dialect.conn()  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES


def test_a_large_wal_is_emptied_once_commits_stop(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    wal = Path(f"{db}-wal")
    with Queue(db, durability="normal") as q:
        # Several MB of WAL, beyond the size a quiet WAL is brought back under.
        for _ in range(6):
            q.enqueue_many("work", [{"pad": "x" * 1000}] * 1000)
            q.ack_many(q.dequeue_many("work", 1000))
        checkpointer = checkpointer_of(q)
        wait_for(lambda: wal.stat().st_size == 0 and checkpointer.truncations >= 1,
                 timeout=30, message="the WAL file was never truncated")
        # The database is whole and still works.
        assert q.backend.quick_check() == []
        q.enqueue("work", {"after": True})
        claimed = q.dequeue("work")
        assert claimed is not None and claimed.payload == {"after": True}


def test_full_durability_keeps_sqlite_s_own_checkpoints(tmp_path: Path) -> None:
    with Queue(tmp_path / "q.db", durability="full") as q:
        assert q.backend.dialect._checkpointer is None  # type: ignore[attr-defined]
        conn = q.backend.dialect.conn()  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
        assert conn.execute("PRAGMA journal_size_limit").fetchone()[0] == WAL_SIZE_LIMIT


def test_close_ends_the_thread(tmp_path: Path) -> None:
    q = Queue(tmp_path / "q.db", durability="normal")
    checkpointer = checkpointer_of(q)
    assert checkpointer.is_alive()
    q.close()
    assert not checkpointer.is_alive()


def test_a_queue_dropped_without_close_ends_its_thread(tmp_path: Path) -> None:
    q = Queue(tmp_path / "q.db", durability="normal")
    checkpointer = checkpointer_of(q)
    del q
    gc.collect()
    wait_for(lambda: not checkpointer.is_alive(), timeout=30,
             message="the checkpoint thread outlived its queue")


def test_an_in_memory_queue_has_no_thread() -> None:
    with Queue(":memory:", durability="normal") as q:
        assert q.backend.dialect._checkpointer is None  # type: ignore[attr-defined]


def test_a_fork_waits_for_a_checkpoint_under_way() -> None:
    """A child must not inherit SQLite's mutexes held by a checkpoint in another thread."""
    holding, release = threading.Event(), threading.Event()

    def checkpoint_under_way() -> None:
        with checkpointer_module._sqlite_calls:
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=checkpoint_under_way)
    holder.start()
    assert holding.wait(30)
    forked = threading.Event()
    child: dict[str, int] = {}

    def fork() -> None:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child leaves at once
            os._exit(0)
        child["pid"] = pid
        forked.set()

    forker = threading.Thread(target=fork)
    forker.start()
    try:
        assert not forked.wait(0.3), "fork() ran while a checkpoint held SQLite"
    finally:
        release.set()
    assert forked.wait(30)
    forker.join(30)
    holder.join(30)
    _, status = os.waitpid(child["pid"], 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_forked_child_runs_its_own_thread(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with Queue(db, durability="normal") as q:
        q.enqueue("work", {"from": "parent"})
        parent_thread = checkpointer_of(q)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - measured by its exit code
            code = 1
            try:
                q.enqueue_many("work", [{"from": "child"}] * 100)
                mine = checkpointer_of(q)
                if mine is not parent_thread and mine.pid == os.getpid() and mine.is_alive():
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert parent_thread.is_alive()
        wait_for(lambda: jobs_in_database_file(db, scratch) == 101, timeout=30,
                 message="the child's jobs never reached the database file")


def test_a_forked_child_can_close_and_exit_whatever_the_thread_was_doing(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """A fork can copy the thread's stop event with its lock held (the thread waits on it
    between rounds). The child must then neither set it (``close()``) nor at exit."""
    script = textwrap.dedent(f"""
        import os, sys, threading, time
        from persistent_queue import Queue
        q = Queue({str(tmp_path / "q.db")!r}, durability="normal")
        q.enqueue("work", {{"n": 1}})
        event = q.backend.dialect._checkpointer._stop
        holding, forked = threading.Event(), threading.Event()
        def hold():  # as another thread inside event.wait() holds its lock at the fork
            with event._cond:
                holding.set()
                forked.wait(30)
        threading.Thread(target=hold).start()
        holding.wait(30)
        pid = os.fork()
        if pid != 0:
            forked.set()
        if pid == 0:
            q.enqueue("work", {{"n": 2}})
            q.close()
            sys.exit(0)  # a normal exit: finalizers and atexit run
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                q.close()
                sys.exit(os.waitstatus_to_exitcode(status))
            time.sleep(0.02)
        os.kill(pid, 9)
        sys.exit("the child hung in close() or at exit")
    """)
    result = subprocess.run([sys.executable, "-c", script], env=subprocess_env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with Queue(tmp_path / "q.db") as q:
        assert q.stats("work").ready == 2


def test_the_thread_outlives_errors_and_recovers(tmp_path: Path) -> None:
    db = tmp_path / "not-yet" / "q.db"
    checkpointer = Checkpointer(db, synchronous="NORMAL", interval=0.01, idle_interval=0.05)
    checkpointer.start()
    try:
        wait_for(lambda: checkpointer.errors >= 2, timeout=30,
                 message="the thread never tried to open the missing database")
        assert checkpointer.is_alive()
        db.parent.mkdir()
        with Queue(db, durability="full") as q:  # full: a queue of its own runs no thread
            q.enqueue_many("work", [{"n": n} for n in range(100)])
            wait_for(lambda: checkpointer.checkpoints >= 1, timeout=30,
                     message="the thread never checkpointed after the database appeared")
    finally:
        checkpointer.stop(timeout=30)
    assert not checkpointer.is_alive()


def test_the_thread_never_creates_a_database_that_is_not_there(tmp_path: Path) -> None:
    """A database deleted under a running process stays deleted: the thread's reconnect
    must not leave a fresh empty file at its path for the next process to open."""
    db = tmp_path / "deleted.db"
    checkpointer = Checkpointer(db, synchronous="NORMAL", interval=0.01, idle_interval=0.05)
    checkpointer.start()
    try:
        wait_for(lambda: checkpointer.errors >= 2, timeout=30,
                 message="the thread never tried to open the missing database")
        assert not db.exists()
    finally:
        checkpointer.stop(timeout=30)
