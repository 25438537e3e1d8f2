"""supervisord started from the repository's own config, in a copy of the project."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from functools import partial
from pathlib import Path

import pytest

from persistent_queue import JobState, Queue
from tests.support import ROOT, free_ports, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OURS = ["producer", "consumer:consumer_00", "consumer:consumer_01", "janitor", "scheduler"]


def copy_project(target: Path, *, servers: bool = False) -> None:
    """The files our processes need; .venv links to the running interpreter's venv.

    The API and consoles are left out unless ``servers``: in the copy they exit at once
    (FATAL) instead of taking ports 8000/8501/8502 from a running system or a parallel test.
    """
    names = ["consumer.py", "producer.py", "tasks.py"]
    if servers:
        names += ["api.py", "ops_console.py", "admin_console.py"]
        shutil.copytree(ROOT / ".streamlit", target / ".streamlit")
    for name in names:
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


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def up_or_ended(url: str, daemon: subprocess.Popen[bytes]) -> bool:
    """Whether ``url`` answers, or supervisord has exited (no use waiting then)."""
    return answers(url) or daemon.poll() is not None


def test_supervisord_serves_the_api_and_consoles_on_the_ports_it_is_given(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    """PQ_API_PORT, PQ_OPS_PORT and PQ_ADMIN_PORT in supervisord's environment, as `make run
    PQ_API_PORT=...` sets them: every program RUNNING, each server answering on its port."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs the project's virtualenv")
    project = tmp_path / "p"
    project.mkdir()
    copy_project(project, servers=True)
    api_port, ops_port, admin_port = free_ports(3)
    env = {k: v for k, v in subprocess_env.items() if k != "PYTHONPATH"}
    env.update(PQ_DB="data/queue.db", PQ_API_PORT=str(api_port), PQ_OPS_PORT=str(ops_port),
               PQ_ADMIN_PORT=str(admin_port))
    venv_bin = project / ".venv" / "bin"
    subprocess.run([str(venv_bin / "python"), "scripts/setup_db.py", "--demo"], cwd=project,
                   env=env, check=True, timeout=60)
    checked = subprocess.run([str(venv_bin / "python"), "scripts/check_ports.py"], cwd=project,
                             env=env, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    config = "supervisor/supervisord.conf"
    daemon = subprocess.Popen([str(venv_bin / "supervisord"), "-n", "-c", config], cwd=project,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctl = [str(venv_bin / "supervisorctl"), "-c", str(project / config)]
    everyone = [*OURS, "api", "ops_console", "admin_console"]
    try:
        for url in (f"http://127.0.0.1:{api_port}/healthz",
                    f"http://127.0.0.1:{ops_port}/_stcore/health",
                    f"http://127.0.0.1:{admin_port}/_stcore/health",
                    f"http://127.0.0.1:{ops_port}/", f"http://127.0.0.1:{admin_port}/"):
            wait_for(partial(up_or_ended, url, daemon), timeout=120, interval=0.2,
                     message=f"{url} to answer")
        assert daemon.poll() is None
        wait_for(lambda: all(status(ctl).get(name) == "RUNNING" for name in everyone),
                 timeout=120, interval=0.5, message=f"{everyone} RUNNING")
        subprocess.run([*ctl, "shutdown"], capture_output=True, timeout=120)
        assert daemon.wait(timeout=120) == 0
    finally:
        if daemon.poll() is None:
            daemon.terminate()
            daemon.wait(timeout=120)
    assert not any(answers(f"http://127.0.0.1:{port}/") for port in (api_port, ops_port))


def test_make_run_names_a_busy_port_instead_of_starting(tmp_path: Path) -> None:
    """scripts/check_ports.py, which `make run` runs first: the busy port, its variable and
    how to pick another; exit 1."""
    api_port, ops_port, admin_port = free_ports(3)
    env = {**os.environ, "PQ_API_PORT": str(api_port), "PQ_OPS_PORT": str(ops_port),
           "PQ_ADMIN_PORT": str(admin_port)}
    script = [sys.executable, str(ROOT / "scripts" / "check_ports.py")]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ops_port))
        busy.listen()
        done = subprocess.run(script, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == (f"error: port {ops_port} (PQ_OPS_PORT, the ops console) is in use: "
                           f"free it or pick another, e.g. make run PQ_OPS_PORT={ops_port + 10}\n")
    assert subprocess.run(script, env=env, timeout=60).returncode == 0
    same = subprocess.run(script, env={**env, "PQ_ADMIN_PORT": str(api_port)},
                          capture_output=True, text=True, timeout=60)
    assert same.returncode == 1 and "PQ_ADMIN_PORT and PQ_API_PORT are both" in same.stderr
    bad = subprocess.run(script, env={**env, "PQ_API_PORT": "80x"}, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "PQ_API_PORT='80x' is not a TCP port" in bad.stderr
    unset = subprocess.run([*script, "PQ_NO_SUCH_PORT"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert (unset.returncode, unset.stderr) == (
        2, "error: PQ_NO_SUCH_PORT='' is not a TCP port (1-65535)\n")
