"""An operator controls running jobs through the real HTTP API while a real ``pq worker`` runs
them: progress a handler writes is read back with ``GET /jobs/{id}``, a running job cancelled
with ``POST /jobs/{id}/cancel`` stops and ends ``cancelled`` (its timeline names the worker and
run time), and a queued job cancelled the same way never runs. Both executors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ROOT, ServedApi, wait_for
from tests.task_apps import Workers

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APP = '''
import os
import time
from pathlib import Path

from persistent_queue import Queue, current_job

q = Queue(os.environ["TASKAPP_DB"])
FOLDER = Path(os.environ["TASKAPP_DIR"])


def record(name):
    with open(FOLDER / name, "a") as out:
        out.write(f"{current_job().id}\\n")


@q.task(queue="control", name="steps")
def steps(count):
    """Reports its progress at every step; set_progress raises once it is cancelled."""
    record("started")
    job = current_job()
    for i in range(count):
        job.set_progress(i / count, message=f"step {i} of {count}")
        time.sleep(0.05)
    record("finished")
    return count
'''


@pytest.fixture
def env(tmp_path: Path, db_url: str, subprocess_env: dict[str, str]) -> dict[str, str]:
    (tmp_path / "taskapp.py").write_text(APP)
    return {**subprocess_env, "TASKAPP_DB": db_url, "TASKAPP_DIR": str(tmp_path)}


@pytest.fixture
def api(tmp_path: Path, db_url: str, env: dict[str, str]) -> Iterator[str]:
    """``api.py --app taskapp:q`` on any free port: its base URL."""
    server = ServedApi([sys.executable, str(ROOT / "api.py"), "--port", "0", "--db", db_url,
                        "--app", "taskapp:q", "--durability", "normal"],
                       log=tmp_path / "api.log", cwd=tmp_path, env=env)
    try:
        yield server.wait_listening()
    finally:
        server.stop()


@pytest.fixture
def workers(tmp_path: Path, db_url: str, env: dict[str, str]) -> Iterator[Workers]:
    running = Workers(tmp_path, db_url, env)
    yield running
    running.stop()


def runs(tmp_path: Path, name: str) -> list[int]:
    path = tmp_path / name
    return [int(line) for line in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_progress_is_read_and_a_running_job_cancelled_over_http(
        api: str, workers: Workers, tmp_path: Path, executor: str) -> None:
    with httpx.Client(base_url=api, timeout=30) as http:

        def job(job_id: int) -> dict[str, Any]:
            response = http.get(f"/jobs/{job_id}")
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        long_id = http.post("/tasks/steps", json={"args": [100_000]}).json()["id"]
        queued_id = http.post("/tasks/steps", json={"args": [1]}).json()["id"]
        queued = http.post(f"/jobs/{queued_id}/cancel", json={"reason": "not needed"})
        assert queued.status_code == 200 and queued.json()["state"] == "cancelled"
        workers.start("--queues", "control", "--executor", executor)

        running = wait_for(lambda: (j := job(long_id))["progress"] and j, timeout=60,
                           message="progress written by the running handler")
        assert running["state"] == "leased" and running["claimed_by"]
        assert 0 <= running["progress"]["fraction"] < 1
        assert running["progress"]["message"].startswith("step ")
        first = running["progress"]["fraction"]
        wait_for(lambda: job(long_id)["progress"]["fraction"] > first, timeout=30,
                 message="the progress to move on")

        requested = http.post(f"/jobs/{long_id}/cancel", json={"reason": "wrong day"})
        assert requested.status_code == 200, requested.text
        assert requested.json()["cancel_requested"] is True
        ended = wait_for(lambda: (j := job(long_id))["state"] == "cancelled" and j,
                         timeout=30, message="the running job to end cancelled")
        assert ended["cancel_reason"] == "wrong day" and ended["run_time"] > 0
        timeline = http.get(f"/jobs/{long_id}/history").json()
        assert [e["event"] for e in timeline] == ["enqueued", "claimed", "cancel_requested",
                                                  "cancelled"]
        assert timeline[-1]["worker"] == running["claimed_by"]
        assert timeline[-1]["run_time"] > 0
        result = http.get(f"/jobs/{long_id}/result").json()
        assert (result["state"], result["error"]) == ("cancelled", "wrong day")
        again = http.post(f"/jobs/{long_id}/cancel")
        assert again.status_code == 409 and again.json()["error"] == "invalid_job_state"

        # The worker goes on: its slot runs the next job.
        after = http.post("/tasks/steps", json={"args": [2]}).json()["id"]
        done = wait_for(lambda: (r := http.get(f"/jobs/{after}/result", params={"wait": 5})
                                 ).status_code == 200 and r.json(),
                        timeout=60, message="the next job's result")
        assert done == {"id": after, "state": "done", "result": 2, "error": None}

    assert runs(tmp_path, "started") == [long_id, after]  # the queued job never ran
    assert runs(tmp_path, "finished") == [after]
