"""``/healthz`` and writes of a real ``api.py`` process when the database goes wrong under it.

* The database file (and its ``-wal`` and ``-shm``) deleted, or replaced by another file,
  while the server runs: ``/healthz`` answers 503, every write answers 503 with a message
  saying so instead of 201 for a job that would vanish at restart, and no fresh empty
  database appears at the path.
* ``/healthz`` without a token cannot load the disk: many calls make at most one durable
  write per couple of seconds, and it answers within seconds while another process holds
  the write lock (instead of holding a server thread for the busy timeout).

The server binds port 0 and the test reads the port it was given from its log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from persistent_queue import Queue
from persistent_queue.errors import DatabaseMissing
from persistent_queue.health import database_health
from tests.support import ROOT, in_thread, wait_for

pytestmark = [pytest.mark.e2e]

TOKEN = "health-e2e-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class Server:
    """A running ``api.py``: its base URL and everything it has printed so far."""

    process: subprocess.Popen[str]
    base: str = ""
    output: list[str] = field(default_factory=list)

    def log(self) -> str:
        return "".join(self.output)


def start_server(db: str, workdir: Path, env: dict[str, str], *args: str) -> Server:
    """``api.py --port 0`` on ``db``; returns once it answers ``/healthz`` with 200."""
    server_env = {**env, "PQ_API_TOKEN": TOKEN}
    server_env.pop("PQ_API_HOST", None)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "api.py"), "--port", "0", "--db", db, *args],
        env=server_env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    server = Server(process)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.output.append(line)

    threading.Thread(target=read, daemon=True).start()

    def port() -> str | None:
        if process.poll() is not None:
            pytest.fail(f"api.py exited with {process.returncode}: {server.log()}")
        found = _LISTENING.search(server.log())
        return found.group(1) if found else None

    server.base = f"http://127.0.0.1:{wait_for(port, timeout=60, message='api.py to listen')}"
    wait_for(lambda: httpx.get(f"{server.base}/healthz", timeout=10).status_code == 200,
             timeout=30, message="/healthz to answer 200")
    return server


def stop_server(server: Server) -> None:
    """SIGTERM, then the clean exit api.py promises (status 0)."""
    server.process.send_signal(signal.SIGTERM)
    try:
        assert server.process.wait(timeout=60) == 0, server.log()
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


@pytest.fixture
def serve(tmp_path: Path, subprocess_env: dict[str, str]
          ) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(db: str, *args: str) -> Server:
        server = start_server(db, tmp_path, subprocess_env, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def wal_commits(db: Path) -> tuple[bytes, int]:
    """The WAL's salts and how many commits it holds since it was last reset: the frames
    carrying those salts whose header records the database size after a commit."""
    data = Path(f"{db}-wal").read_bytes()
    if len(data) < 32:
        return b"", 0
    page_size = int.from_bytes(data[8:12], "big")
    salts, commits, offset = data[16:24], 0, 32
    while offset + 24 + page_size <= len(data):
        header = data[offset:offset + 24]
        if header[8:16] != salts:
            break  # a frame left over from before the last reset
        commits += int.from_bytes(header[4:8], "big") != 0
        offset += 24 + page_size
    return salts, commits


def delete_database(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(f"{db}{suffix}")
        except FileNotFoundError:
            pass


def in_parallel(count: int, call: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """``count`` calls at once: the server's thread pool takes them on several threads (some
    of which open their first connection to the database now)."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: call(), range(count)))


# -- the database deleted or replaced under the server ------------------------------------


@pytest.mark.parametrize("durability", ["full", "normal"])
def test_a_deleted_database_fails_health_and_every_write(
    serve: Callable[..., Server], tmp_path: Path, durability: str
) -> None:
    db = tmp_path / "queue.db"
    server = serve(str(db), "--durability", durability)
    with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as client:
        assert client.post("/enqueue", json={"queue": "q", "payload": 1}).status_code == 201

        delete_database(db)

        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["checks"]["file"]["ok"] is False
        assert "deleted" in health.json()["checks"]["file"]["error"]
        enqueued = in_parallel(8, lambda: client.post(
            "/enqueue", json={"queue": "q", "payload": 2}))
        assert {answer.status_code for answer in enqueued} == {503}, [a.text for a in enqueued]
        assert all("deleted" in answer.json()["detail"] for answer in enqueued)
        created = client.post("/queues", json={"name": "other"})
        assert created.status_code == 503 and "deleted" in created.json()["detail"]
        claimed = client.get("/dequeue", params={"queue": "q"})
        assert claimed.status_code == 503
        assert {answer.status_code for answer in in_parallel(8, lambda: client.get(
            "/healthz"))} == {503}
    # Nothing in the process made a new database at the path (a new thread's connection
    # would have: SQLite creates a missing file), and it still stops cleanly.
    assert not db.exists() and not Path(f"{db}-wal").exists()
    stop_server(server)
    assert not db.exists()


def test_a_database_replaced_under_the_server_fails_every_write(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    db = tmp_path / "queue.db"
    server = serve(str(db))
    with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as client:
        assert client.post("/enqueue", json={"queue": "q", "payload": 1}).status_code == 201
        # A restore from a copy: another database file renamed over the path.
        with Queue(tmp_path / "other.db") as other:
            other.enqueue("q", "from the other file")
        os.replace(tmp_path / "other.db", db)
        Path(f"{db}-wal").unlink(missing_ok=True)
        Path(f"{db}-shm").unlink(missing_ok=True)

        answer = client.post("/enqueue", json={"queue": "q", "payload": 2})
        assert answer.status_code == 503 and "replaced" in answer.json()["detail"]
        health = client.get("/healthz")
        assert health.status_code == 503 and "replaced" in health.json()["checks"]["file"][
            "error"]
    stop_server(server)
    with Queue(db) as restored:  # the file put in place was left as it was
        assert [job.payload for job in restored.list_jobs("q")] == ["from the other file"]


@pytest.mark.parametrize("durability", ["full", "normal"])
def test_the_library_refuses_every_write_to_a_deleted_file(tmp_path: Path,
                                                          durability: str) -> None:
    db = tmp_path / "queue.db"
    with Queue(db, durability=durability) as queue:
        queue.enqueue("q", 1)
        claimed = queue.dequeue("q")
        assert claimed is not None

        delete_database(db)

        writes: list[Callable[[], object]] = [
            lambda: queue.enqueue("q", 2), lambda: queue.enqueue_many("q", [3, 4]),
            lambda: queue.dequeue("q"), lambda: queue.ack(claimed),
            lambda: queue.set_value("key", "value"), lambda: queue.create_queue("other"),
        ]
        for write in writes:
            with pytest.raises(DatabaseMissing, match="deleted"):
                write()
        thread, outcome = in_thread(lambda: queue.enqueue("q", 5))  # a new connection
        thread.join(timeout=30)
        assert isinstance(outcome.get("error"), DatabaseMissing), outcome
        report = database_health(queue)
        assert not report.ok and report.file_error is not None
        assert "deleted" in report.problems[0]
    assert not db.exists()


# -- /healthz stays cheap and bounded ----------------------------------------------------


def test_many_healthz_calls_make_at_most_one_write_per_interval(
    serve: Callable[..., Server], db_url: str, backend: str
) -> None:
    server = serve(db_url)
    calls = 40
    db = Path(db_url)
    before = wal_commits(db) if backend == "sqlite" else (b"", 0)
    with Queue(db_url) as reader, httpx.Client(base_url=server.base, timeout=30) as client:
        written = set()
        began = time.monotonic()
        for _ in range(calls):
            assert client.get("/healthz").status_code == 200  # no token needed
            written.add(reader.get_value("api.healthz"))
        elapsed = time.monotonic() - began
    at_most = elapsed / 2.0 + 2  # one write per 2 s, plus the one under way at each end
    assert len(written) <= at_most, (len(written), elapsed)
    if backend == "sqlite":
        after = wal_commits(db)
        assert after[0] == before[0], "the WAL was reset meanwhile: commits cannot be counted"
        assert after[1] - before[1] <= at_most, (after[1] - before[1], elapsed)
    stop_server(server)


_HOLD_THE_WRITE_LOCK = """
import sqlite3, sys
db = sys.argv[1]
if db.startswith("postgresql"):
    import psycopg
    conn = psycopg.connect(db)
    conn.execute("LOCK TABLE kv IN EXCLUSIVE MODE")  # inside a transaction: held until exit
else:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.mark.slow  # ~5 s: the last answer is reused for 2 s before the lock shows
def test_healthz_answers_promptly_while_another_process_holds_the_write_lock(
    serve: Callable[..., Server], db_url: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    server = serve(db_url)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_THE_WRITE_LOCK, db_url],
                              env=subprocess_env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with httpx.Client(base_url=server.base, timeout=30) as client:

            def prompt_healthz() -> httpx.Response:
                began = time.monotonic()
                answer = client.get("/healthz")
                took = time.monotonic() - began
                # Bounded by the probe's 1 s wait, not the 60 s busy timeout (5 s: a loaded
                # host).
                assert took < 5, took
                return answer

            # The last answer (measured before the lock was taken) serves for 2 s at most.
            wait_for(lambda: prompt_healthz().status_code == 503, timeout=30, interval=0.1,
                     message="/healthz to notice the write lock")
            for answer in in_parallel(6, prompt_healthz):
                assert answer.status_code == 503
                writable = answer.json()["checks"]["writable"]
                assert writable["ok"] is False and writable["busy"] is True
                assert "write lock" in writable["error"]
                assert answer.json()["checks"]["reachable"]["ok"] is True
            assert holder.stdin is not None
            holder.stdin.close()  # the lock is released: the waiting test write goes through
            assert holder.wait(timeout=30) == 0
            wait_for(lambda: client.get("/healthz").status_code == 200, timeout=30,
                     interval=0.1, message="/healthz to recover once the lock is released")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    stop_server(server)

