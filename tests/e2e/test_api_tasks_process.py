"""``pq api --app module:q`` as a real server process: a task posted over HTTP is run by a real
``pq worker --app`` and its result long-polled over HTTP."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_packaged_processes import BIN, Server

pytestmark = [pytest.mark.e2e]

APP = '''
from persistent_queue import Queue

q = Queue("declarations.db")


@q.task(queue="greetings", name="greet")
def greet(name, punctuation="!"):
    return {"greeting": "hello " + name + punctuation}
'''


@pytest.fixture
def env() -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH, no PQ_* settings."""
    clean = {k: v for k, v in os.environ.items()
             if k != "PYTHONPATH" and not k.startswith("PQ_")}
    return clean | {"PYTHONUNBUFFERED": "1"}


@pytest.fixture
def server(tmp_path: Path, env: dict[str, str]) -> Iterator[Server]:
    (tmp_path / "myapp.py").write_text(APP)
    started = Server([str(BIN / "pq"), "--db", "api.db", "api", "--port", "0",
                      "--app", "myapp:q"], env, tmp_path)
    yield started
    started.stop()


def test_a_task_posted_to_pq_api_app_is_run_by_a_worker_and_its_result_long_polled(
        tmp_path: Path, env: dict[str, str], server: Server) -> None:
    base = f"http://127.0.0.1:{server.port()}"
    assert [t["name"] for t in httpx.get(f"{base}/tasks", timeout=30).json()] == ["greet"]
    posted = httpx.post(f"{base}/tasks/greet", json={"args": ["ada"]}, timeout=30)
    assert posted.status_code == 201, posted.text
    job_id = posted.json()["id"]
    unknown = httpx.post(f"{base}/tasks/nope", json={}, timeout=30)
    assert unknown.status_code == 422 and unknown.json()["error"] == "unknown_task"

    worker = subprocess.Popen(
        [str(BIN / "pq"), "--db", "api.db", "worker", "--app", "myapp:q",
         "--queues", "greetings", "--max-jobs", "1", "--log-dir", ""],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        answer = httpx.get(f"{base}/jobs/{job_id}/result", params={"wait": 20}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "done"
        assert answer.json()["result"] == {"greeting": "hello ada!"}
        assert worker.wait(timeout=60) == 0, worker.stderr.read() if worker.stderr else ""
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait()
    shown = httpx.get(f"{base}/jobs/{job_id}", timeout=30).json()
    assert shown["result"] == {"greeting": "hello ada!"}
    assert server.stop() == 0, server.output()


def test_pq_api_with_an_app_that_cannot_be_imported_exits_2(
        tmp_path: Path, env: dict[str, str]) -> None:
    result = subprocess.run([str(BIN / "pq"), "api", "--port", "0", "--app", "missing:q"],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--app missing:q" in result.stderr and "cannot import" in result.stderr
