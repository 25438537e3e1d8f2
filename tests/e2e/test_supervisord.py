"""supervisord started from the repository's own config, in a copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from persistent_queue import JobState, Queue
from tests.support import ROOT, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OURS = ["producer", "consumer:consumer_00", "consumer:consumer_01", "janitor", "scheduler"]


def copy_project(target: Path) -> None:
    """The files our processes need; .venv links to the running interpreter's venv.

    The API and consoles are left out on purpose: in the copy they exit at once (FATAL)
    instead of taking ports 8000/8501/8502 from a running system or a parallel test.
    """
    for name in ("consumer.py", "producer.py", "tasks.py"):
        shutil.copy2(ROOT / name, target / name)
    for folder in ("persistent_queue", "scripts", "supervisor"):
        shutil.copytree(ROOT / folder, target / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.sock", "*.pid"))
    (target / "logs").mkdir()
    (target / "data").mkdir()
    (target / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)


def status(ctl: list[str]) -> dict[str, str]:
    out = subprocess.run([*ctl, "status"], capture_output=True, text=True, timeout=60).stdout
    return {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}


def test_supervisord_runs_and_stops_the_system(backend: str, db_url: str, tmp_path: Path,
                                               subprocess_env: dict[str, str]) -> None:
    """As `make run`: setup_db.py, then supervisord with PQ_DB in its environment."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs the project's virtualenv")
    project = tmp_path / "p"
    project.mkdir()
    copy_project(project)
    db = "data/queue.db" if backend == "sqlite" else db_url  # relative: the project's
    env = {k: v for k, v in subprocess_env.items() if k != "PYTHONPATH"}
    env["PQ_DB"] = db
    venv_bin = project / ".venv" / "bin"
    subprocess.run([str(venv_bin / "python"), "scripts/setup_db.py", "--demo"], cwd=project,
                   env=env, check=True, timeout=60)
    target = project / db if backend == "sqlite" else db
    config = "supervisor/supervisord.conf"
    daemon = subprocess.Popen([str(venv_bin / "supervisord"), "-n", "-c", config], cwd=project,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctl = [str(venv_bin / "supervisorctl"), "-c", str(project / config)]
    try:
        wait_for(lambda: all(status(ctl).get(name) == "RUNNING" for name in OURS),
                 timeout=120, interval=0.5, message=f"{OURS} RUNNING")
        with (project / "data" / "input.txt").open("a") as handle:
            handle.write("ops@example.com\n")
        with Queue(target) as q:
            wait_for(lambda: [j.state for j in q.list_jobs("emails")] == [JobState.DONE],
                     timeout=120, interval=0.2, message="the line to be published and acked")
            # The supervised scheduler fires a schedule declared while it runs.
            q.schedule("reports", {"kind": "tick"}, every=0.5, name="tick", start_at=q.now())
            wait_for(lambda: q.stats().get("reports") is not None
                     and q.stats("reports").ready >= 1,
                     timeout=120, interval=0.2, message="the scheduler to fire the schedule")
            kinds = sorted(w.kind for w in q.workers() if w.state == "running")
            assert kinds == ["consumer", "consumer", "producer", "scheduler"]
        restarted = subprocess.run([*ctl, "restart", "consumer:consumer_00"],
                                   capture_output=True, text=True, timeout=120)
        assert "started" in restarted.stdout
        assert (project / "logs" / "processed_log.csv").exists()
        assert (project / "logs" / "consumer_00.log").exists()
        subprocess.run([*ctl, "shutdown"], capture_output=True, timeout=120)
        assert daemon.wait(timeout=120) == 0
        with Queue(target) as q:
            assert {w.state for w in q.workers()} == {"stopped"}  # everyone said goodbye
    finally:
        if daemon.poll() is None:
            daemon.terminate()
            daemon.wait(timeout=120)
    assert not os.path.exists(project / "supervisor" / "supervisord.sock")
