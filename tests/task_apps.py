"""Task apps for process tests: a module of tasks written into the test's folder (which
``pq worker --app taskapp:q`` imports), the same tasks declared on the test's own Queue, and
the worker processes that run them."""

from __future__ import annotations

import runpy
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import Queue


def task_app(source: str, tmp_path: Path, db_url: str,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    """Write ``source`` as ``taskapp.py`` and yield its Queue (closed at the end); the app
    reads ``TASKAPP_DB`` and ``TASKAPP_DIR``. For a fixture: ``yield from task_app(...)``."""
    (tmp_path / "taskapp.py").write_text(source)
    monkeypatch.setenv("TASKAPP_DB", db_url)
    monkeypatch.setenv("TASKAPP_DIR", str(tmp_path))
    q: Queue = runpy.run_path(str(tmp_path / "taskapp.py"))["q"]
    yield q
    q.close()


def task(app: Queue, name: str) -> Any:
    """The task of ``app`` named ``name``."""
    return next(t for t in app.tasks if t.name == name)


class Workers:
    """``pq worker`` processes on the test's database, stopped (or killed) at the end."""

    def __init__(self, tmp_path: Path, db_url: str, env: dict[str, str]) -> None:
        self.tmp_path, self.db_url = tmp_path, db_url
        self.env = {**env, "TASKAPP_DB": db_url, "TASKAPP_DIR": str(tmp_path)}
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *flags: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp_path / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "persistent_queue", "worker", "--db", self.db_url,
             "--app", "taskapp:q", "--wait", "0.5", "--log-dir", "", "--log-format", "text",
             *flags], cwd=self.tmp_path, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "".join(path.read_text() for path in sorted(self.tmp_path.glob("worker-*.log")))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
