"""The original design's own commands work as written, from the project folder.

    supervisord -c supervisor/supervisord.conf                  (after make setup and
    supervisorctl -c supervisor/supervisord.conf status          source .venv/bin/activate)
    supervisorctl -c supervisor/supervisord.conf stop consumer
    supervisorctl -c supervisor/supervisord.conf start consumer
    make stop && make run
    curl -X POST http://localhost:8000/send -d "message=Hello World"
    curl http://localhost:8000/receive

supervisord runs in the background in a copy of the project whose ``.venv`` links to the
running interpreter's; the HTTP API and the consoles are left out of that copy's config (they
would take ports 8000/8501/8502, and Streamlit is slow to start), the API is tested on its own
as a real ``api.py`` process on a port it binds itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from persistent_queue import Queue
from tests.support import ROOT, ServedApi, wait_for

pytestmark = pytest.mark.e2e

CONFIG = "supervisor/supervisord.conf"
OURS = ["producer", "consumer:consumer_00", "consumer:consumer_01", "janitor", "scheduler"]
CONSUMERS = ["consumer:consumer_00", "consumer:consumer_01"]
SERVERS = ("api", "ops_console", "admin_console")


def project_copy(target: Path) -> Path:
    """The project's processes, scripts, config and Makefile; .venv links to ours."""
    target.mkdir(exist_ok=True)
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs the project's virtualenv")
    for name in ("consumer.py", "producer.py", "tasks.py", "Makefile"):
        shutil.copy2(ROOT / name, target / name)
    for folder in ("persistent_queue", "scripts", "supervisor"):
        shutil.copytree(ROOT / folder, target / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.sock", "*.pid"))
    (target / "logs").mkdir()
    (target / "data").mkdir()
    (target / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    config = target / CONFIG
    text = config.read_text()
    for name in SERVERS:
        text, found = re.subn(rf"\n\[program:{name}\]\n.*?(?=\n\[|\Z)", "\n", text, flags=re.S)
        assert found == 1, name
    config.write_text(text)
    return target


def activated(project: Path, env: dict[str, str]) -> dict[str, str]:
    """The environment after ``source .venv/bin/activate``, without PQ_DB (the default db)."""
    clean = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "PQ_DB", "PYTHONHOME")}
    clean["VIRTUAL_ENV"] = str(project / ".venv")
    clean["PATH"] = os.pathsep.join([str(project / ".venv" / "bin"), clean.get("PATH", "")])
    return clean


class Shell:
    """Runs commands as typed at a prompt in the project folder."""

    def __init__(self, project: Path, env: dict[str, str]) -> None:
        self.project = project
        self.env = env

    def __call__(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, shell=True, cwd=self.project, env=self.env, text=True,
                              capture_output=True, timeout=timeout)

    def status(self) -> dict[str, str]:
        out = self(f"supervisorctl -c {CONFIG} status").stdout
        return {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}

    def pid(self, name: str) -> int:
        return int(self(f"supervisorctl -c {CONFIG} pid {name}").stdout.strip())

    def daemon_pid(self) -> int:
        """supervisord's pid (its pidfile is written just after the foreground call returns)."""
        pidfile = self.project / "supervisor" / "supervisord.pid"

        def read() -> int | None:
            try:
                return int(pidfile.read_text().strip())
            except (OSError, ValueError):
                return None

        return wait_for(read, timeout=60, message="supervisord's pidfile")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def shell(tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[Shell]:
    """The README's set-up (make setup, source .venv/bin/activate) in a project copy."""
    project = project_copy(tmp_path / "p")
    sh = Shell(project, activated(project, subprocess_env))
    # The copy's .venv is the running one: make must not reinstall it.
    setup = sh("make -o .venv/.installed-stamp setup")
    assert setup.returncode == 0, setup.stdout + setup.stderr
    try:
        yield sh
    finally:
        pidfile = project / "supervisor" / "supervisord.pid"
        if pidfile.exists() and alive(pid := sh.daemon_pid()):
            sh("make stop", timeout=300)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_design_supervisor_commands_work_as_written(shell: Shell) -> None:
    started = shell(f"supervisord -c {CONFIG}")  # in the background, as the design says
    assert started.returncode == 0, started.stdout + started.stderr
    daemon = shell.daemon_pid()
    wait_for(lambda: all(shell.status().get(n) == "RUNNING" for n in OURS), timeout=120,
             interval=0.3, message=f"{OURS} RUNNING")

    stopped = shell(f"supervisorctl -c {CONFIG} stop consumer")
    assert stopped.returncode == 0 and stopped.stdout == "consumer: stopped\n", stopped
    states = shell.status()
    assert [states[n] for n in CONSUMERS] == ["STOPPED", "STOPPED"]
    assert all(states[n] == "RUNNING" for n in OURS if n not in CONSUMERS)

    restarted = shell(f"supervisorctl -c {CONFIG} start consumer")
    assert restarted.returncode == 0 and restarted.stdout == "consumer: started\n", restarted
    assert [shell.status()[n] for n in CONSUMERS] == ["RUNNING", "RUNNING"]

    before = [shell.pid(n) for n in CONSUMERS]
    again = shell(f"supervisorctl -c {CONFIG} restart consumer")
    assert again.stdout == "consumer: stopped\nconsumer: started\n", again
    after = [shell.pid(n) for n in CONSUMERS]
    assert not set(before) & set(after) and all(after)

    # The group syntax and a single process still mean what they always did.
    one = shell(f"supervisorctl -c {CONFIG} stop consumer:consumer_00")
    assert one.stdout == "consumer:consumer_00: stopped\n"
    assert [shell.status()[n] for n in CONSUMERS] == ["STOPPED", "RUNNING"]
    group = shell(f"supervisorctl -c {CONFIG} stop 'consumer:*'")
    assert group.stdout == "consumer:consumer_01: stopped\n"  # the other one was stopped
    assert [shell.status()[n] for n in CONSUMERS] == ["STOPPED", "STOPPED"]
    unknown = shell(f"supervisorctl -c {CONFIG} stop nosuch")
    assert unknown.returncode != 0 and "no such process" in unknown.stdout
    assert shell.daemon_pid() == daemon


@pytest.mark.slow
def test_make_stop_returns_once_supervisord_has_exited(shell: Shell) -> None:
    """A consumer holds a 2-second job when ``make stop`` runs: it waits for it."""
    config = shell.project / CONFIG
    config.write_text(config.read_text().replace("--handler tasks:send_email",
                                                 "--handler persistent_queue.handlers:sleep"))
    with Queue(shell.project / "data" / "queue.db") as q:
        q.enqueue_many("emails", [{"seconds": 2}] * 4)
        assert shell(f"supervisord -c {CONFIG}").returncode == 0
        daemon = shell.daemon_pid()
        wait_for(lambda: q.stats("emails").leased >= 1, timeout=120, interval=0.1,
                 message="a consumer to hold a job")

        stop = shell("make stop", timeout=300)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert not alive(daemon), "make stop returned while supervisord was still running"
        assert "has exited" in stop.stdout
        assert q.stats("emails").leased == 0  # the jobs in hand were finished or given back
    assert not (shell.project / "supervisor" / "supervisord.sock").exists()

    # `make stop && make run`: supervisord starts again at once (it would find the socket taken).
    rerun = shell(f"supervisord -c {CONFIG}")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert shell.daemon_pid() != daemon and alive(shell.daemon_pid())
    second = shell.daemon_pid()
    assert shell("make stop", timeout=300).returncode == 0
    assert not alive(second)
    nothing = shell("make stop")
    assert nothing.returncode == 0
    assert nothing.stdout.strip().endswith("supervisord is not running: nothing to stop")


def test_make_stop_without_supervisord_says_so(tmp_path: Path,
                                               subprocess_env: dict[str, str]) -> None:
    project = project_copy(tmp_path)
    sh = Shell(project, activated(project, subprocess_env))
    result = sh("make stop")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("supervisord is not running: nothing to stop")
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer exists: a pidfile left by a killed supervisord
    (project / "supervisor" / "supervisord.pid").write_text(f"{gone.pid}\n")
    stale = sh("make stop")
    assert stale.returncode == 0 and "is stale" in stale.stdout, stale.stdout


# -- the API: curl as the design writes it -------------------------------------------------

@pytest.fixture
def api(tmp_path: Path, subprocess_env: dict[str, str]) -> Iterator[str]:
    """``python api.py --port 0`` (no token, no PQ_DEFAULT_QUEUE): its base URL."""
    env = {k: v for k, v in subprocess_env.items()
           if k not in ("PQ_API_TOKEN", "PQ_API_READ_TOKEN", "PQ_DEFAULT_QUEUE", "PQ_API_HOST")}
    api = ServedApi([sys.executable, str(ROOT / "api.py"), "--port", "0", "--db",
                     str(tmp_path / "queue.db")], log=tmp_path / "api.log", cwd=tmp_path,
                    env=env)
    try:
        yield api.wait_listening()
    finally:
        api.stop()


def curl(*args: str) -> tuple[int, dict[str, object]]:
    """``curl ARGS`` (httpx when curl is not installed): the status and the JSON body."""
    if shutil.which("curl"):
        out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args], text=True,
                             capture_output=True, timeout=60, check=True).stdout
        body, _, code = out.rpartition("\n")
        return int(code), json.loads(body) if body else {}
    if args[0] == "-X":  # -X POST URL -d DATA
        response = httpx.post(args[2], content=args[4].encode(), timeout=60,
                              headers={"content-type": "application/x-www-form-urlencoded"})
    else:
        response = httpx.get(args[0], timeout=60)
    return response.status_code, response.json() if response.content else {}


def test_design_curl_commands_send_and_receive(api: str) -> None:
    code, sent = curl("-X", "POST", f"{api}/send", "-d", "message=Hello World")
    assert code == 201, sent
    assert sent["queue"] == "default" and sent["payload"] == "Hello World"
    code, received = curl(f"{api}/receive")
    assert code == 200, received
    assert received["id"] == sent["id"] and received["payload"] == "Hello World"
    assert received["lease_token"] and received["state"] == "leased"
    code, _ = curl(f"{api}/receive")
    assert code == 204  # nothing else is ready

    code, queued = curl("-X", "POST", f"{api}/enqueue", "-d", "message=second&queue=emails")
    assert code == 201 and queued["queue"] == "emails" and queued["payload"] == "second"
    code, received = curl(f"{api}/receive?queue=emails")
    assert code == 200 and received["payload"] == "second"


def test_design_curl_mistakes_say_what_a_valid_request_is(api: str) -> None:
    code, answer = curl("-X", "POST", f"{api}/send", "-d", "msg=Hello World")
    assert code == 422
    assert "unknown form field 'msg'" in str(answer["detail"])
    assert "message=Hello+World" in str(answer["detail"])
    code, answer = curl("-X", "POST", f"{api}/send", "-d", '{"payload": 1}')
    assert code == 422 and "Content-Type: application/json" in str(answer["detail"])
