"""SQLite wake-ups: a commit wakes waiting consumers of every process through their sockets in
``<db>-wake/`` (persistent_queue/storage/sqlite/wake.py), instead of 40 polls a second.

Wake-ups are told from polls by the waiters' counters (``wake_counts``), never by timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import Queue
from persistent_queue.storage.sqlite.wake import SAFETY_NET
from tests.support import ROOT, in_thread, wait_for

_WAITER = """
import json, sys
from pathlib import Path
from persistent_queue import Queue
q = Queue(sys.argv[1], durability="normal")
counts = q.backend.dialect.wake_counts
q.dequeue("q")
before = counts.checks
assert q.dequeue("q", wait=float(sys.argv[2])) is None
generation = Path(sys.argv[1] + "-wake/generation").read_bytes()
print(json.dumps({"idle_checks": counts.checks - before,
                  "generation": int.from_bytes(generation, "little")}), flush=True)
before, woken = counts.checks, counts.wakeups
job = q.dequeue("q", wait=60)
print(json.dumps({"job": job.payload, "checks": counts.checks - before,
                  "wakeups": counts.wakeups - woken}), flush=True)
"""


def _sockets(db: Path) -> list[Path]:
    folder = Path(f"{db}-wake")
    return sorted(folder.glob("*.sock")) if folder.is_dir() else []


def _generation(db: Path) -> int:
    """The waiters' counter: moved on by each waiter once its socket is bound."""
    counter = Path(f"{db}-wake/generation")
    return int.from_bytes(counter.read_bytes(), "little") if counter.exists() else 0


def _registered(db: Path, before: int) -> bool:
    """A waiter bound its socket and counted itself in since ``before``."""
    return bool(_sockets(db)) and _generation(db) > before


def _waiter(db: Path, idle: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _WAITER, str(db), str(idle)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)


def _counts(q: Queue) -> Any:
    return q.backend.dialect.wake_counts  # type: ignore[attr-defined]


@pytest.mark.e2e
def test_a_waiter_in_another_process_is_woken_by_a_commit_and_does_not_poll(
        tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    q = Queue(db, durability="normal")
    q.create_queue("q")
    waiter = _waiter(db, 2.0)
    assert waiter.stdout is not None
    try:
        idle = json.loads(waiter.stdout.readline())
        # Two idle seconds: one look per safety-net second (and the first), not 80 polls.
        assert idle["idle_checks"] <= 2 / SAFETY_NET + 2, idle
        wait_for(lambda: _registered(db, idle["generation"]), message="the waiter's socket")
        q.enqueue("q", "hello")
        assert _counts(q).sent >= 1  # the writer's byte to the waiting socket
        woken = json.loads(waiter.stdout.readline())
        assert woken["job"] == "hello"
        # Woken by the byte, or it saw the commit at its first look; never by a later poll.
        assert (woken["wakeups"] >= 1 and woken["checks"] <= 3) or woken["checks"] == 1, woken
        assert waiter.wait(timeout=30) == 0
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert _sockets(db) == []  # a waiter that leaves takes its socket with it
    q.close()


@pytest.mark.e2e
def test_the_socket_of_a_killed_waiter_is_removed_and_enqueues_go_on(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    q = Queue(db, durability="normal")
    q.create_queue("q")
    waiter = _waiter(db, 0.0)
    assert waiter.stdout is not None
    first = json.loads(waiter.stdout.readline())  # an empty wait over: the next registers
    wait_for(lambda: _registered(db, first["generation"]), message="the waiter's socket")
    stale = _sockets(db)
    os.kill(waiter.pid, signal.SIGKILL)
    waiter.wait(timeout=30)
    assert _sockets(db) == stale  # left behind by the kill
    q.enqueue("q", 1)  # refused by the dead socket: unlinked, the enqueue stands
    assert _sockets(db) == [] and _counts(q).removed == 1
    assert q.stats("q").ready == 1
    # A new waiter (a thread of this process, on its own connection) is woken as before.
    sent, generation = _counts(q).sent, _generation(db)
    thread, outcome = in_thread(lambda: q.dequeue("q2", wait=60))
    wait_for(lambda: _registered(db, generation), message="the new waiter's socket")
    q.enqueue("q2", 2)
    assert _counts(q).sent > sent
    thread.join(timeout=30)
    assert outcome["result"].payload == 2
    q.close()


def test_every_waiter_is_woken_and_a_commit_of_an_atomic_block_wakes_too(
        tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    q = Queue(db, durability="normal")
    names = [f"q{i}" for i in range(5)]
    for name in names:
        q.create_queue(name)
    generation = _generation(db)

    def consume(name: str) -> Any:
        return lambda: q.dequeue(name, wait=60)

    waiters = [in_thread(consume(name)) for name in names]
    wait_for(lambda: len(_sockets(db)) == len(names)
             and _generation(db) >= generation + len(names), message="five sockets")
    with q.atomic():
        for name in names:
            q.enqueue(name, name)
    assert _counts(q).sent >= len(names)  # a byte to each at the block's commit (and claims)
    for thread, _ in waiters:
        thread.join(timeout=30)
    assert [outcome["result"].payload for _, outcome in waiters] == names
    q.close()


@pytest.mark.parametrize("blocked", ["folder is a file", "path too long"])
def test_waiters_poll_where_there_are_no_wake_ups(tmp_path: Path, blocked: str) -> None:
    if blocked == "folder is a file":
        db = tmp_path / "queue.db"
        Path(f"{db}-wake").write_text("not a folder")
    else:  # the database's path fits, a socket's beside it does not (AF_UNIX: 107 bytes)
        folder = tmp_path / ("d" * max(1, 100 - len(str(tmp_path))))
        folder.mkdir()
        db = folder / "queue.db"
    q = Queue(db, durability="normal")
    q.create_queue("q")
    checks = _counts(q).checks
    started = threading.Event()

    def consume() -> Any:
        started.set()
        return q.dequeue("q", wait=60)

    thread, outcome = in_thread(consume)
    started.wait(timeout=30)
    # The waiter polls (several looks) rather than sleeping on a socket.
    wait_for(lambda: _counts(q).checks - checks >= 3, message="the waiter's polls")
    Queue(db, durability="normal").enqueue("q", "polled")
    thread.join(timeout=30)
    assert outcome["result"].payload == "polled"
    assert _counts(q).wakeups == 0 and _sockets(db) == []
    q.close()


def test_a_database_named_through_a_symlink_shares_the_wake_ups_of_its_real_file(
        tmp_path: Path) -> None:
    """SQLite keeps the -wal beside the real file whatever name opens it; the waiters' sockets
    must be found there too, or a writer naming the real path never wakes a waiter that named
    the link (it would see the commit only at its 1 s safety net)."""
    real = tmp_path / "data" / "queue.db"
    real.parent.mkdir()
    link = tmp_path / "queue.db"
    link.symlink_to(real)
    waiting = Queue(link, durability="normal")
    waiting.create_queue("q")
    writer = Queue(real, durability="normal")
    thread, outcome = in_thread(lambda: waiting.dequeue("q", wait=60))
    wait_for(lambda: len(_sockets(real)) == 1, message="the waiter's socket beside the real file")
    writer.enqueue("q", "through the real path")
    thread.join(timeout=30)
    assert outcome["result"].payload == "through the real path"
    assert _counts(waiting).wakeups >= 1  # woken by the byte, not found by a later look
    assert not Path(f"{link}-wake").exists()
    assert not Path(f"{link}-reserve").exists()  # the disk reserve is the real file's too
    writer.close()
    waiting.close()
