"""Helpers shared by the tests: the project root, a controllable clock, poll-with-deadline,
an action run in a thread, TCP ports for the servers the tests start."""

from __future__ import annotations

import errno
import fcntl
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_for(
    condition: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Poll ``condition`` until it returns a truthy value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


# Ports handed out by this process: each one's lock file stays open (and locked) until the
# process exits, so no other test process (a parallel run, another engineer's) is given it.
_PORT_LOCKS: dict[int, IO[bytes]] = {}
_PORT_LOCK_DIR = Path(tempfile.gettempdir()) / f"persistent-queue-test-ports-{os.getuid()}"
_PORTS_LOW = 10_000  # below: well-known services (PostgreSQL, 8000, 8501...) crowd the range


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range of ports for outgoing connections (Linux; the usual one elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _port_candidates() -> list[int]:
    """Ports outside the ephemeral range: no outgoing connection is ever given one of them
    (it could take the port between the choice and the server's bind, or connect a client
    to itself while the server is down)."""
    low, high = _ephemeral_range()
    outside = [p for p in range(_PORTS_LOW, 65536) if not low <= p <= high]
    return outside if len(outside) >= 1000 else list(range(_PORTS_LOW, 65536))


def _claim(port: int) -> bool:
    """Lock ``port`` for this process if no other test process holds it; True if locked."""
    _PORT_LOCK_DIR.mkdir(exist_ok=True)
    handle = (_PORT_LOCK_DIR / f"{port}.lock").open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return False
    _PORT_LOCKS[port] = handle
    return True


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 for servers this test starts.

    Every port is outside the kernel's ephemeral range (so no outgoing connection takes it),
    nothing is bound to it now (each is bound, all at once, until every one is chosen), and
    it is locked for this process's lifetime (so no other test process, nor a later call in
    this one, is given it). Prefer a server that binds port 0 and reports its port, where
    the server can.
    """
    candidates = _port_candidates()
    start = random.randrange(len(candidates))
    held: list[socket.socket] = []
    chosen: list[int] = []
    try:
        for offset in range(len(candidates)):
            if len(chosen) == count:
                break
            port = candidates[(start + offset) % len(candidates)]
            if port in _PORT_LOCKS:
                continue  # given out earlier in this process: its server may still run
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                probe.bind(("127.0.0.1", port))  # no SO_REUSEADDR: any use of it fails here
            except OSError as exc:
                probe.close()
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            if not _claim(port):
                probe.close()
                continue
            held.append(probe)
            chosen.append(port)
    finally:
        for probe in held:
            probe.close()
    if len(chosen) < count:
        pytest.fail(f"found only {len(chosen)} of {count} free TCP ports")
    return chosen


def in_thread(action: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``action`` in a daemon thread; the dict gets its ``result`` or its ``error``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = action()
        except Exception as exc:  # handed to the test, which asserts on it
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


_OPEN_AND_ENQUEUE = """
import os, sys, time
from pathlib import Path
db, go = sys.argv[1], Path(sys.argv[2])
Path(f"{go}.ready.{os.getpid()}").touch()
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
from persistent_queue import Queue
with Queue(db, durability="normal") as q:
    q.enqueue("q", os.getpid())
    print(q.schema_version())
"""


def open_and_enqueue_together(db: str, workdir: Path, env: dict[str, str],
                              processes: int = 4) -> list[tuple[int, int, str, str]]:
    """Start ``processes`` children that each open ``db`` and enqueue their pid to queue "q",
    released at the same moment; each child's (pid, exit code, stdout: the schema version it
    saw, stderr)."""
    go = workdir / "go"
    children = [
        subprocess.Popen([sys.executable, "-c", _OPEN_AND_ENQUEUE, db, str(go)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    wait_for(lambda: len(list(workdir.glob("go.ready.*"))) == processes, timeout=60,
             message="children to start")
    go.touch()  # release them together
    results = [child.communicate(timeout=120) for child in children]
    return [(child.pid, child.returncode, out, err)
            for child, (out, err) in zip(children, results, strict=True)]


#: The line uvicorn logs once it listens; a server started with ``--port 0`` names its port here.
API_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class ServedApi:
    """A server process started with ``--port 0``: its base URL, once it has named its port,
    and everything it has printed (in ``log``, a file: an undrained pipe would block it)."""

    def __init__(self, command: list[str], *, log: Path, cwd: Path,
                 env: dict[str, str]) -> None:
        self.log = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(command, env=env, cwd=cwd, stdout=output,
                                            stderr=subprocess.STDOUT)
        self.base = ""

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_listening(self, timeout: float = 120) -> str:
        """Its base URL, as soon as it names its port; fails at once if it exits first."""
        def bound_port() -> int | None:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.text()}")
            found = API_LISTENING.search(self.text())
            return int(found.group(1)) if found else None

        port = wait_for(bound_port, timeout=timeout, interval=0.05,
                        message="the server to listen")
        self.base = f"http://127.0.0.1:{port}"
        return self.base

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then its exit code (killed if it is still running after ``timeout``)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
