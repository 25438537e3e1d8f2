"""The package as a user installs it: a wheel built from the tree, in a fresh virtualenv.

The wheel is built with ``pip wheel`` from a copy of the sources, installed with its core
dependencies only in a virtualenv of its own (no ``--system-site-packages``), and run from a
folder outside the project with ``PYTHONPATH`` unset: ``pq init``, ``pq produce``, ``pq enqueue``,
``pq worker`` with a handler module of that folder, ``pq stats``, ``pq janitor``. The same
virtualenv shows that the core pulls no web stack and that a command needing an extra names it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: What only the extras may bring (distribution names as ``pip list`` spells them).
NOT_IN_CORE = {"fastapi", "uvicorn", "starlette", "prometheus-client", "fastapi_offline",
               "streamlit", "pandas", "altair", "psycopg", "psycopg-binary", "supervisor"}

HANDLER = '''\
import json
from pathlib import Path


def handle(job):
    with Path("handled.jsonl").open("a") as out:
        out.write(json.dumps({"id": job.id, "payload": job.payload}) + "\\n")
'''


@dataclass(frozen=True)
class Installed:
    """The wheel and the virtualenv it is installed in; ``run`` works in ``cwd``."""

    wheel: Path
    venv: Path
    cwd: Path
    env: dict[str, str]

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.venv / "bin" / args[0]), *args[1:]], cwd=self.cwd,
                              env=self.env, input=stdin, capture_output=True, text=True,
                              timeout=120)


def _clean_env() -> dict[str, str]:
    """The environment without anything pointing at the project or its virtualenv."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items()
            if k not in drop and not k.startswith("PQ_")} | {"PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # a copy: concurrent builds never share the tree's build/ folder
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "persistent_queue", source / "persistent_queue",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = _clean_env()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                    str(work / "dist"), str(source)], env=env, check=True, timeout=300,
                   capture_output=True)
    (wheel,) = (work / "dist").glob("persistent_queue-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], env=env, check=True, timeout=120,
                   capture_output=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    str(wheel)], env=env, check=True, timeout=300, capture_output=True)
    cwd = work / "run"
    cwd.mkdir()
    return Installed(wheel=wheel, venv=venv, cwd=cwd, env=env)


def test_the_wheel_carries_every_sql_file_and_the_console_scripts(installed: Installed) -> None:
    in_tree = {p.relative_to(ROOT).as_posix()
               for p in (ROOT / "persistent_queue").rglob("*.sql")}
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    assert in_tree and in_tree <= names, sorted(in_tree - names)
    assert {"persistent_queue/console/apps/ops.py", "persistent_queue/console/apps/admin.py",
            "persistent_queue/py.typed"} <= names


def test_the_core_install_pulls_no_web_stack(installed: Installed) -> None:
    listed = installed.run("python", "-m", "pip", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    names = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert "persistent-queue" in names
    assert not names & NOT_IN_CORE, sorted(names & NOT_IN_CORE)


def test_enqueue_produce_worker_ack_round_trip_from_the_wheel(installed: Installed) -> None:
    (installed.cwd / "myhandlers.py").write_text(HANDLER)
    where = installed.run("python", "-c",
                          "import persistent_queue; print(persistent_queue.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(installed.venv), where.stdout
    db = ["--db", "queue.db"]

    init = installed.run("pq", *db, "init")
    assert init.returncode == 0, init.stderr
    produced = installed.run("pq", "produce", *db, "--queue", "q", "--input", "-",
                             "--log-format", "text", stdin='{"x": 2}\n{"x": 3}\n')
    assert produced.returncode == 0, produced.stderr
    assert '"published": 2' in produced.stderr
    enqueued = installed.run("pq", *db, "enqueue", "q", '{"x": 1}')
    assert enqueued.returncode == 0, enqueued.stderr

    worked = installed.run("pq", "worker", *db, "--queue", "q", "--handler",
                           "myhandlers:handle", "--max-jobs", "3", "--wait", "0.1")
    assert worked.returncode == 0, worked.stdout + worked.stderr
    handled = [json.loads(line) for line in
               (installed.cwd / "handled.jsonl").read_text().splitlines()]
    assert sorted(h["payload"]["x"] for h in handled) == [1, 2, 3]
    stats = installed.run("pq", *db, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert '"done": 3' in stats.stdout, stats.stdout

    janitor = installed.run("pq", "janitor", *db, "--older-than", "0")
    assert janitor.returncode == 0, janitor.stderr
    assert json.loads(janitor.stdout.splitlines()[-1])["done_jobs_removed"] == 3
    scheduler = installed.run("pq", "scheduler", "--help")
    assert scheduler.returncode == 0 and "--interval" in scheduler.stdout


@pytest.mark.parametrize("command, extra", [
    (["api", "--port", "0"], "api"),
    (["console", "ops"], "console"),
    (["--db", "postgresql://pq@127.0.0.1:1/pq", "stats"], "postgres"),
    (["worker", "--db", "postgresql://pq@127.0.0.1:1/pq", "--queue", "q"], "postgres"),
])
def test_a_command_needing_an_extra_names_it(installed: Installed, command: list[str],
                                             extra: str) -> None:
    result = installed.run("pq", *command)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"pip install 'persistent-queue[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr
