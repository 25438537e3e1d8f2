"""A real ``pq worker`` killed with SIGKILL: its job shows as running (``Queue.running_jobs``)
while it lives; once its heartbeat is older than the threshold the registry reads it as lost
(not running, not stopped), and ``pq workers prune`` forgets it. Both backends."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.support import wait_for
from tests.task_apps import Workers, task, task_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APP = '''
import os
import time
from pathlib import Path

from persistent_queue import Queue, current_job

q = Queue(os.environ["TASKAPP_DB"])


@q.task(queue="slow", name="hold", max_attempts=1)
def hold():
    """Reports progress, then runs until its worker is killed."""
    current_job().set_progress(0.5, "holding")
    (Path(os.environ["TASKAPP_DIR"]) / "holding").touch()
    time.sleep(120)
'''

#: The lost-worker threshold of this test (the default is config.WORKER_STALE_AFTER, 60 s).
LOST_AFTER = 2.0


@pytest.fixture
def app(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    yield from task_app(APP, tmp_path, db_url, monkeypatch)


def test_a_killed_worker_is_lost_after_the_threshold_and_pruned(
    app: Queue, workers: Workers, tmp_path: Path, db_url: str, subprocess_env: dict[str, str]
) -> None:
    proc = workers.start("--queues", "slow")
    job_id = task(app, "hold").delay().id
    wait_for(lambda: (tmp_path / "holding").exists(), timeout=60, message="the job to start")

    (me,) = [w for w in app.workers() if w.pid == proc.pid]
    assert (me.kind, me.state, me.queues) == ("consumer", "running", ["slow"])
    running = wait_for(lambda: [j for j in app.running_jobs() if j.progress is not None],
                       message="its progress")
    assert [(j.id, j.task, j.worker, j.progress, j.progress_message, j.attempt)
            for j in running] == [(job_id, "hold", me.id, 0.5, "holding", 1)]

    proc.send_signal(signal.SIGKILL)
    proc.wait(30)

    def state() -> str:
        return next(w.state for w in app.workers(stale_after=LOST_AFTER) if w.id == me.id)

    wait_for(lambda: state() == "lost", timeout=LOST_AFTER + 30, message="the worker lost")
    # Under the default threshold it is not lost yet, and it never said goodbye.
    (still,) = [w for w in app.workers() if w.id == me.id]
    assert (still.state, still.stopped_at) == ("running", None)

    pruned = subprocess.run(
        [sys.executable, "-m", "persistent_queue", "--db", db_url, "workers", "prune",
         "--older-than", "0s", "--lost-after", f"{LOST_AFTER:g}s"],
        env=subprocess_env, capture_output=True, text=True, timeout=60, check=False)
    assert (pruned.returncode, pruned.stdout.strip()) == (0, "removed 1 worker(s)"), pruned
    assert [w for w in app.workers() if w.id == me.id] == []
