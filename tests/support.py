"""Helpers shared by the tests: the project root, a controllable clock, poll-with-deadline,
an action run in a thread."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

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
