"""The processes as the package runs them: ``uvicorn persistent_queue.api:app``, ``pq api``,
``pq console``, ``pq worker`` under the ``pq`` group's ``--db``.

Each is a real process started from a folder outside the project, without ``PYTHONPATH``: the
installed package alone must carry what it runs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from persistent_queue import Queue
from tests.support import free_ports, wait_for

pytestmark = [pytest.mark.e2e]

RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
BIN = Path(sys.executable).parent


@pytest.fixture
def env() -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH, no PQ_* settings."""
    clean = {k: v for k, v in os.environ.items()
             if k != "PYTHONPATH" and not k.startswith("PQ_")}
    return clean | {"PYTHONUNBUFFERED": "1"}


class Server:
    """A server process whose output goes to a file (a pipe left undrained would block it)."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.log = cwd / "server.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out,
                                            stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def port(self) -> int:
        """The port uvicorn reports once it listens."""
        def bound() -> int | None:
            if self.process.poll() is not None:
                pytest.fail(f"exited with {self.process.returncode}: {self.output()}")
            found = RUNNING.search(self.output())
            return int(found.group(1)) if found else None

        return wait_for(bound, timeout=120, interval=0.1, message="the server to listen")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def listening_addresses(port: int) -> set[str]:
    """Hex local addresses of the sockets listening on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_uvicorn_serves_the_app_configured_from_pq_variables(
    tmp_path: Path, env: dict[str, str], servers: list[Server]
) -> None:
    db = tmp_path / "data" / "q.db"
    settings = {"PQ_DB": str(db), "PQ_API_TOKEN": "secret", "PQ_DEFAULT_QUEUE": "inbox"}
    server = Server([sys.executable, "-m", "uvicorn", "persistent_queue.api:app",
                     "--host", "127.0.0.1", "--port", "0"], env | settings, tmp_path)
    servers.append(server)
    base = f"http://127.0.0.1:{server.port()}"
    assert httpx.get(f"{base}/queues", timeout=30).status_code == 401
    sent = httpx.post(f"{base}/send", data={"message": "Hello World"}, timeout=30,
                      headers={"Authorization": "Bearer secret"})
    assert sent.status_code == 201, sent.text
    assert sent.json()["queue"] == "inbox"
    # uvicorn's own CLI ends by re-raising SIGTERM once it has shut down gracefully
    assert server.stop() in (0, -signal.SIGTERM), server.output()
    assert "Application shutdown complete" in server.output()
    with Queue(db) as q:
        assert q.stats("inbox").ready == 1


def test_importing_the_api_package_opens_no_database(tmp_path: Path, env: dict[str, str]
                                                     ) -> None:
    db = tmp_path / "never" / "q.db"
    result = subprocess.run(
        [sys.executable, "-c", "import persistent_queue.api as a; print(a.create_app.__name__)"],
        env=env | {"PQ_DB": str(db)}, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not db.parent.exists()


def test_pq_api_serves_the_database_of_the_pq_db_flag(
    tmp_path: Path, env: dict[str, str], servers: list[Server]
) -> None:
    db = tmp_path / "api.db"
    server = Server([str(BIN / "pq"), "--db", str(db), "api", "--port", "0"],
                    env | {"PQ_DB": str(tmp_path / "not-this.db")}, tmp_path)
    servers.append(server)
    base = f"http://127.0.0.1:{server.port()}"
    enqueued = httpx.post(f"{base}/enqueue", json={"queue": "q", "payload": 1}, timeout=30)
    assert enqueued.status_code == 201, enqueued.text
    assert server.stop() == 0, server.output()
    with Queue(db) as q:
        assert q.stats("q").ready == 1
    assert not (tmp_path / "not-this.db").exists()


def test_pq_api_refuses_bad_flags_with_exit_2(tmp_path: Path, env: dict[str, str]) -> None:
    result = subprocess.run([str(BIN / "pq"), "api", "--port", "70000"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "pq api: error: --port must be 0-65535" in result.stderr


def test_pq_worker_uses_the_groups_db_and_the_current_folders_handler(
    tmp_path: Path, env: dict[str, str]
) -> None:
    db = tmp_path / "w.db"
    with Queue(db) as q:
        q.enqueue("q", {"n": 7})
    (tmp_path / "local_handlers.py").write_text(
        "from pathlib import Path\n\n"
        "def handle(job):\n    Path('seen').write_text(str(job.payload['n']))\n")
    result = subprocess.run(
        [str(BIN / "pq"), "--db", str(db), "worker", "--queue", "q", "--handler",
         "local_handlers:handle", "--max-jobs", "1", "--wait", "0.1", "--log-dir", ""],
        env=env | {"PQ_DB": str(tmp_path / "not-this.db")}, cwd=tmp_path, capture_output=True,
        text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "seen").read_text() == "7"
    with Queue(db) as q:
        assert q.stats("q").done == 1


@pytest.mark.slow
def test_pq_console_serves_the_packaged_console_on_loopback(
    tmp_path: Path, env: dict[str, str], servers: list[Server]
) -> None:
    (port,) = free_ports(1)
    server = Server([str(BIN / "pq"), "--db", str(tmp_path / "c.db"), "console", "ops",
                     "--port", str(port)], env, tmp_path)
    servers.append(server)

    def healthy() -> bool:
        if server.process.poll() is not None:
            pytest.fail(f"exited with {server.process.returncode}: {server.output()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=5).text == "ok"
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout=120, interval=0.2, message="the console to answer")
    page = httpx.get(f"http://127.0.0.1:{port}/", timeout=30)
    assert page.status_code == 200
    if Path("/proc/net/tcp").exists():
        assert listening_addresses(port) <= {"0100007F"}
    server.stop()
