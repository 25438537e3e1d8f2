"""supervisord from the repository's own config, run in a temporary copy of the project."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, wait_for


class Supervised:
    """A project copy under ``target`` with ``.venv`` linked to the running interpreter's."""

    def __init__(self, target: Path, env: dict[str, str], *, with_servers: bool = False) -> None:
        self.project = target
        self.env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
        names = ["consumer.py", "producer.py", "tasks.py"]
        folders = ["persistent_queue", "scripts", "supervisor"]
        if with_servers:
            names += ["api.py", "ops_console.py", "admin_console.py"]
            folders += [".streamlit"]
        for name in names:
            shutil.copy2(ROOT / name, target / name)
        for folder in folders:
            shutil.copytree(ROOT / folder, target / folder,
                            ignore=shutil.ignore_patterns("__pycache__", "*.sock", "*.pid"))
        (target / "logs").mkdir()
        (target / "data").mkdir()
        (target / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
        self.config = target / "supervisor" / "supervisord.conf"
        self.bin = target / ".venv" / "bin"
        self.ctl = [str(self.bin / "supervisorctl"), "-c", str(self.config)]
        self.daemon: subprocess.Popen[bytes] | None = None

    def edit_config(self, old: str, new: str) -> None:
        text = self.config.read_text()
        assert old in text, old
        self.config.write_text(text.replace(old, new))

    def setup_db(self) -> Path:
        subprocess.run([str(self.bin / "python"), "scripts/setup_db.py", "--db",
                        "data/queue.db", "--demo"], cwd=self.project, env=self.env, check=True,
                       timeout=120, capture_output=True)
        return self.project / "data" / "queue.db"

    def start(self) -> None:
        self.daemon = subprocess.Popen([str(self.bin / "supervisord"), "-n", "-c",
                                        str(self.config)], cwd=self.project, env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def status(self) -> dict[str, str]:
        out = subprocess.run([*self.ctl, "status"], capture_output=True, text=True,
                             timeout=60).stdout
        return {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}

    def pid(self, name: str) -> int:
        out = subprocess.run([*self.ctl, "pid", name], capture_output=True, text=True,
                             timeout=60).stdout
        return int(out.strip())

    def wait_running(self, names: list[str], timeout: float = 180) -> None:
        """Wait until every program in ``names`` is RUNNING; fail at once, with its log, if
        one is FATAL (supervisord gave up restarting it: it would never come up)."""
        def running() -> bool:
            status = self.status()
            fatal = [name for name in names if status.get(name) == "FATAL"]
            if fatal:
                pytest.fail(f"{fatal} FATAL; log:\n" + "\n".join(self.log(n) for n in fatal))
            return all(status.get(name) == "RUNNING" for name in names)

        wait_for(running, timeout=timeout, interval=0.5, message=f"{names} RUNNING")

    def log(self, name: str, tail: int = 3000) -> str:
        """The end of program ``name``'s log (``group:process`` names its process's log)."""
        path = self.project / "logs" / f"{name.rpartition(':')[2]}.log"
        try:
            return path.read_text(errors="replace")[-tail:]
        except OSError as exc:
            return f"({path.name}: {exc})"

    def shutdown(self) -> None:
        if self.daemon is None:
            return
        if self.daemon.poll() is None:
            subprocess.run([*self.ctl, "shutdown"], capture_output=True, timeout=180)
            try:
                self.daemon.wait(timeout=180)
            except subprocess.TimeoutExpired:
                self.daemon.terminate()
                self.daemon.wait(timeout=60)


def children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
