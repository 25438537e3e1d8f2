"""Hostile checks of the hardening fixes: the producer's stored offsets and the database-file
check, driven the way real deployments drive them.

- A producer ``--follow``-ing a file that another process appends to in small chunks (lines
  split mid-way, CRLF, blank lines, long lines, the first offsets below the fingerprint's
  256 bytes) while it is killed with ``kill -9`` or stopped and restarted again and again:
  every line is stored exactly once, in order. A false "the file changed" on an ordinary
  append would republish the whole file; a lost offset would republish a batch.
- The check that the database file was not deleted or replaced must not refuse a healthy
  database: a relative path in a process that changes its working directory afterwards, and
  a ``sqlite:////absolute`` URL (a path that starts with ``//``) opened from a second thread.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import Queue
from persistent_queue.publisher import Publisher, PublishOptions
from tests.support import ROOT, in_thread, wait_for

LINES = 2500
SOAK_SECONDS = 12.0


def _stored(q: Queue, queue: str) -> list[Any]:
    if not any(info.name == queue for info in q.list_queues()):
        return []
    found: list[Any] = []
    while True:
        page = q.list_jobs(queue, limit=5000, offset=len(found), newest_first=False)
        found += [job.payload for job in page]
        if len(page) < 5000:
            return found


def _input(rng: random.Random) -> tuple[bytes, list[str]]:
    """The file's bytes and the payloads they must become (``--format text``)."""
    data = bytearray()
    expected = []
    for n in range(LINES):
        text = f"line {n} " + "x" * rng.choice([0, 0, 5, 60, 300])
        if rng.random() < 0.05:
            data += b"\n" if rng.random() < 0.5 else b"\r\n"  # blank lines become no job
        data += text.encode() + (b"\r\n" if rng.random() < 0.2 else b"\n")
        expected.append(text)
    return bytes(data), expected


@pytest.mark.e2e
@pytest.mark.slow
def test_followed_file_appended_in_pieces_under_kill_9_stores_each_line_once_in_order(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    rng = random.Random(16)
    db, source = tmp_path / "queue.db", tmp_path / "app.log"
    source.write_bytes(b"")
    data, expected = _input(rng)
    q = Queue(db, durability="normal")
    env = {**subprocess_env, "PQ_LOG_FORMAT": "text"}
    log = (tmp_path / "producer.log").open("ab")

    log_start = [0]  # where the log stood when the running producer started

    def start() -> subprocess.Popen[bytes]:
        batch = str(rng.choice([1, 3, 7, 50, 500]))
        log_start[0] = os.fstat(log.fileno()).st_size
        return subprocess.Popen(
            [sys.executable, str(ROOT / "producer.py"), "--db", str(db), "--queue", "in",
             "--input", str(source), "--follow", "--format", "text", "--batch", batch],
            env=env, stdout=log, stderr=subprocess.STDOUT)

    pause = SOAK_SECONDS / (len(data) / 200)  # about 200 bytes a write, over SOAK_SECONDS

    def append() -> None:
        fd = os.open(source, os.O_WRONLY | os.O_APPEND)
        try:
            written = 0
            while written < len(data):
                size = rng.randint(1, 400)  # lines split anywhere, "\r" apart from its "\n"
                written += os.write(fd, data[written:written + size])
                time.sleep(rng.random() * 2 * pause)
        finally:
            os.close(fd)

    proc = start()
    writer, outcome = in_thread(append)
    restarts = 0
    try:
        while writer.is_alive():
            writer.join(rng.uniform(0.05, 1.2))  # killed at start-up, mid-batch, while idle
            if rng.random() < 0.8:
                proc.kill()
            else:
                proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            restarts += 1
            proc = start()
        assert "error" not in outcome, outcome
        wait_for(lambda: len(_stored(q, "in")) >= len(expected), timeout=60,
                 message=f"{len(expected)} lines stored")
        # The last producer may have started after an earlier one stored the last line: its
        # SIGTERM must find it running (its handler in place), not still importing.
        log_path = tmp_path / "producer.log"
        wait_for(lambda: b"publishing " in log_path.read_bytes()[log_start[0]:], timeout=60,
                 message="the last producer to start publishing")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    got = _stored(q, "in")
    q.close()
    assert restarts >= 5
    duplicated = len(got) - len(set(got))
    assert duplicated == 0, f"{duplicated} lines stored twice (log: {tmp_path / 'producer.log'})"
    assert got == expected


# -- the database-file check on healthy databases ------------------------------------------

def test_a_relative_path_survives_a_change_of_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "app")
    with Queue("data/queue.db") as q:
        q.enqueue("jobs", 1)
        os.chdir(tmp_path / "elsewhere")
        q.enqueue("jobs", 2)  # this thread's connection
        thread, result = in_thread(lambda: q.enqueue("jobs", 3))  # a new connection
        thread.join(30)
        assert "error" not in result, result
        assert [job.payload for job in q.list_jobs("jobs", newest_first=False)] == [1, 2, 3]
    assert sorted(os.listdir(tmp_path / "elsewhere")) == []  # no second database made there


def test_a_sqlite_url_with_an_absolute_path_opens_from_every_thread(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'queue.db'}"  # sqlite:////tmp/...: the path starts "//"
    with Queue(url) as q:
        q.enqueue("jobs", 1)
        thread, result = in_thread(lambda: q.enqueue("jobs", 2))  # a new connection
        thread.join(30)
        assert "error" not in result, result
        assert [job.payload for job in q.list_jobs("jobs", newest_first=False)] == [1, 2]


# -- a followed file rotated right after its last lines -------------------------------------

def test_lines_written_just_before_a_rotation_are_read_before_the_new_file(
        tmp_path: Path) -> None:
    """Between reading the end of the file and looking whether a new one took its name, the
    producer writes its heartbeat (which waits for the database's write lock: milliseconds
    to seconds on a busy database). An application that writes its last lines and is rotated
    (``mv app.log app.log.1``, a new ``app.log``) in that moment must lose none of them."""
    source = tmp_path / "app.log"
    source.write_text("old 1\n")
    q = Queue(tmp_path / "queue.db", durability="normal")
    publisher = Publisher(q, PublishOptions(queue="in", fmt="text"))
    rotated: list[bool] = []

    def heartbeat(force: bool = False) -> None:
        at_end_of_file = sys._getframe(1).f_code.co_name == "_drain_file"  # not after a commit
        if at_end_of_file and not rotated and _stored(q, "in") == ["old 1"]:
            with source.open("a") as handle:
                handle.write("old 2\n")
            source.rename(tmp_path / "app.log.1")
            source.write_text("new 1\n")
            rotated.append(True)

    publisher._beat = heartbeat  # type: ignore[method-assign]
    thread, outcome = in_thread(lambda: publisher.publish_file(source, follow=True, poll=0.01))
    try:
        wait_for(lambda: "new 1" in _stored(q, "in"), timeout=30, message="the new file's line")
    finally:
        publisher.stop()
        thread.join(30)
        q.close()
    assert "error" not in outcome, outcome
    with Queue(tmp_path / "queue.db") as check:
        assert _stored(check, "in") == ["old 1", "old 2", "new 1"]


# -- inputs that are not files ---------------------------------------------------------------

@pytest.mark.e2e
def test_a_directory_or_a_pipe_as_input_is_a_clear_error(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for source, kind in ((tmp_path, "a directory"), (fifo, "a pipe")):
        done = subprocess.run(
            [sys.executable, str(ROOT / "producer.py"), "--db", str(tmp_path / "queue.db"),
             "--queue", "in", "--input", str(source)],
            env=subprocess_env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        assert f"is {kind}" in done.stderr and "--input -" in done.stderr
