"""Every command of the README and of docs/ works as written.

Each page runs in a fresh copy of the project (its own ``data/`` and ``logs/``; ``.venv``
links to the running virtualenv, with the project copy first on the import path): its shell
blocks in order in one bash session (``set -e -o pipefail``; variables, ``cd`` and
``source .venv/bin/activate`` carry over), its Python blocks in order in one namespace,
with the shell session's environment and directory at that point. A block's
``<!-- doc-test: ... -->`` comment says when it runs in the background, what it waits for,
whether it needs PostgreSQL, or why it cannot run here (tests/doc_blocks.py).

The pages use the documented ports 8000, 8001, 8501 and 8502 as written; the pages run one
at a time, and a lock file keeps a second run of this test (another test process) from
starting its servers at the same time. ``free_ports`` (tests/support.py) never gives a port
below 10000, so no other test takes them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests.doc_blocks import Block, DocBlockError, blocks_of, documentation_files
from tests.postgres_support import require_postgres, unavailable_reason
from tests.support import ROOT, wait_for

pytestmark = pytest.mark.e2e

#: The blocks that cannot run in a test, each with its reason (the directive's). A new skip
#: must be added here too, so that none goes unnoticed.
EXPECTED_SKIPS = {
    ("README.md", "make test    # creates .venv if needed, installs, runs the whole test suite"),
    ("getting-started.md", "pip install persistent-queue                 # the library and "
                           "the pq command"),
    ("operations.md", "make bench         # own env in bench/.venv (peers: persist-queue, "
                      "huey, litequeue); tens of minutes"),
    ("operations.md", 'make bench BENCH_ARGS="--systems pg-normal,raw-pg-normal,pg-full,'
                      'raw-pg-full --out bench/results/postgres"'),
    ("operations.md", ".venv/bin/python -m pytest tests/reliability   # short mode (part of "
                      "`make test`), ~3 min"),
    ("RELIABILITY.md", ".venv/bin/python -m pytest tests/reliability     # short mode, runs "
                       "in `make test` (~2-3 min)"),
    ("tracing.md", "pip install 'persistent-queue[otel]' opentelemetry-distro "
                   "opentelemetry-exporter-otlp"),
}
#: The ports the pages use as written.
DOC_PORTS = (8000, 8001, 8002, 8010, 8501, 8502, 8511, 8512)
BLOCK_TIMEOUT = 150.0
READY_TIMEOUT = 120.0
#: Left out of the copy: the top folder's state (its data, logs, site, caches) and at any depth
#: what only a run leaves behind.
TOP_LEVEL_STATE = {".git", ".venv", "data", "logs", "site", "build", "dist", ".mypy_cache",
                   ".pytest_cache", ".ruff_cache", ".hypothesis", ".venv-django6"}
ANYWHERE = shutil.ignore_patterns(".venv", "__pycache__", "*.pyc", "*.egg-info", "*.sock",
                                  "*.pid")


def _ignored(folder: str, names: list[str]) -> set[str]:
    ignored = set(ANYWHERE(folder, names))
    if Path(folder) == ROOT:
        ignored |= TOP_LEVEL_STATE & set(names)
    return ignored


def _runnable(path: Path) -> bool:
    try:
        return any(not block.skipped for block in blocks_of(path))
    except DocBlockError:
        return True  # its test fails with the error (and so does the tag test)


def _pages() -> list[Path]:
    return [path for path in documentation_files(ROOT) if _runnable(path)]


# -- the blocks themselves -----------------------------------------------------------------


def test_every_block_is_tagged_as_run_or_picture() -> None:
    """bash/sh/shell/console and python/py run; untagged and text do not; nothing else."""
    errors = []
    for path in documentation_files(ROOT):
        try:
            blocks_of(path)
        except DocBlockError as exc:
            errors.append(str(exc))
    assert not errors, "\n".join(errors)


def test_blocks_that_cannot_run_are_listed_with_a_reason() -> None:
    skipped = {(block.path.name, block.code.splitlines()[0].strip()): block.options["reason"]
               for path in documentation_files(ROOT) for block in blocks_of(path)
               if block.skipped}
    assert set(skipped) == EXPECTED_SKIPS, "update EXPECTED_SKIPS (and keep skips rare)"
    assert all(reason.strip() for reason in skipped.values())


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """``mkdocs build --strict``: every page in the nav, no broken link."""
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                             str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").exists()


# -- running a page ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def doc_ports() -> Iterator[None]:
    """This process alone runs documented servers on the documented ports."""
    lock_dir = Path(tempfile.gettempdir()) / f"persistent-queue-test-ports-{os.getuid()}"
    lock_dir.mkdir(exist_ok=True)
    with (lock_dir / "docs-fixed-ports.lock").open("ab") as handle:

        def locked() -> bool:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False
            return True

        wait_for(locked, timeout=900, interval=0.5,
                 message="another run of the docs test to release the documented ports")
        yield


def _port_free(port: int) -> bool:
    """Nothing listens on ``port`` (connections of a server that has stopped may linger in
    TIME_WAIT: the servers bind with SO_REUSEADDR, so they do not keep it from them)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def project_copy() -> Path:
    """A fresh copy of the project in a short path (supervisord's socket path is limited),
    readable by the ``postgres`` user (a cluster in data/pg); .venv is the running virtualenv
    with a stamp of its own, so no ``make`` target reinstalls it."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs the project's virtualenv")
    target = Path(tempfile.mkdtemp(prefix="pq-doc-"))
    target.chmod(0o755)
    project = target / "p"
    shutil.copytree(ROOT, project, ignore=_ignored, symlinks=True)
    for folder in ("data", "logs"):
        (project / folder).mkdir()
    venv = project / ".venv"
    venv.mkdir()
    for entry in Path(sys.prefix).iterdir():
        if entry.name != ".installed-stamp":
            (venv / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    (venv / ".installed-stamp").touch()
    return project


def page_environment(project: Path) -> dict[str, str]:
    """A user's shell in the project: .venv/bin first on PATH, the copy importable."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PQ_", "PYTEST", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = os.pathsep.join([str(project / ".venv" / "bin"), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(project / ".venv")
    env["PYTHONPATH"] = str(project)  # the copy's package, before the editable install's
    env["PYTHONUNBUFFERED"] = "1"
    env["PQ_DISK_RESERVE_BYTES"] = str(256 * 1024)  # as every test database (conftest.py)
    return env


_PYTHON_SESSION = r"""
import contextlib, os, sys, traceback
namespace = {"__name__": "__main__"}
for line in sys.stdin:
    folder, name = os.path.split(line.strip())
    base = os.path.join(folder, name)
    with open(base + ".env", "rb") as f:
        env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
    os.environ.clear()
    os.environ.update({k.decode(): v.decode() for k, v in env.items()})
    with open(base + ".pwd") as f:
        os.chdir(f.read().strip())
    code = compile(open(base + ".py").read(), base + ".py", "exec")
    status = 0
    with open(base + ".out", "w") as out:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                exec(code, namespace)
            except BaseException:
                traceback.print_exc()
                status = 1
    with open(base + ".rc.part", "w") as f:
        f.write(str(status))
    os.replace(base + ".rc.part", base + ".rc")  # whole, never seen empty by the reader
"""


@dataclass
class Background:
    block: Block
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class PageRun:
    """One page's shell session, Python session and background processes."""

    project: Path
    work: Path
    env: dict[str, str]
    shell: subprocess.Popen[str] | None = None
    python: subprocess.Popen[str] | None = None
    background: list[Background] = field(default_factory=list)
    count: int = 0
    transcript: list[str] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    # -- state shared between blocks: the shell's environment and directory --

    def _state(self, base: Path) -> tuple[dict[str, str], str]:
        env_file, pwd_file = self.work / "last.env", self.work / "last.pwd"
        if not env_file.exists():
            env_file.write_bytes(b"".join(f"{k}={v}\0".encode() for k, v in self.env.items()))
            pwd_file.write_text(str(self.project))
        shutil.copy(env_file, base.with_suffix(".env"))
        shutil.copy(pwd_file, base.with_suffix(".pwd"))
        env = dict(item.split("=", 1) for item in env_file.read_bytes().decode().split("\0")
                   if "=" in item)
        return env, pwd_file.read_text().strip()

    def fail(self, block: Block, what: str) -> None:
        pytest.fail(f"{block.where}: {what}\n--- the block ---\n{block.code}\n"
                    f"--- earlier blocks ---\n" + "\n".join(self.transcript[-6:]), pytrace=False)

    def run(self, block: Block) -> None:
        self.count += 1
        base = self.work / f"{self.count:02d}"
        if block.background:
            self._start_background(block, base)
        elif block.kind == "shell":
            self._run_shell(block, base)
        else:
            self._run_python(block, base)
        if "ready" in block.options:
            self._wait_ready(block)
        self.transcript.append(f"[{block.where}] {block.code.strip()}")

    def _run_shell(self, block: Block, base: Path) -> None:
        if self.shell is None:
            self._state(base)
            self.shell = subprocess.Popen(
                ["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE, text=True,
                cwd=self.project, env=self.env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True)
        script = base.with_suffix(".sh")
        script.write_text(block.code)
        assert self.shell.stdin is not None
        self.shell.stdin.write(
            f"set -eo pipefail\nsource {script} > {base}.out 2>&1 < /dev/null\nset +eo pipefail\n"
            f"env -0 > {self.work}/last.env; pwd > {self.work}/last.pwd; "
            f"echo 0 > {base}.rc.part; mv {base}.rc.part {base}.rc\n")
        self.shell.stdin.flush()
        self._await(block, base, self.shell, "the shell")

    def _run_python(self, block: Block, base: Path) -> None:
        self._state(base)
        if self.python is None:
            self.python = subprocess.Popen(
                [str(self.project / ".venv" / "bin" / "python"), "-c", _PYTHON_SESSION],
                stdin=subprocess.PIPE, text=True, cwd=self.project, env=self.env,
                start_new_session=True)
        base.with_suffix(".py").write_text(block.code)
        assert self.python.stdin is not None
        self.python.stdin.write(f"{base}\n")
        self.python.stdin.flush()
        self._await(block, base, self.python, "the Python session")

    def _await(self, block: Block, base: Path, session: subprocess.Popen[str],
               name: str) -> None:
        rc, out = base.with_suffix(".rc"), base.with_suffix(".out")
        deadline = time.monotonic() + float(block.options.get("timeout") or BLOCK_TIMEOUT)
        while not rc.exists():
            if session.poll() is not None:
                self.fail(block, f"failed: {name} exited with {session.returncode}\n"
                                 f"--- its output ---\n{_read(out)}")
            if time.monotonic() > deadline:
                self.fail(block, f"still running after {BLOCK_TIMEOUT:.0f} s\n"
                                 f"--- its output ---\n{_read(out)}")
            time.sleep(0.05)
        if rc.read_text().strip() != "0":
            self.fail(block, f"failed\n--- its output ---\n{_read(out)}")

    def _start_background(self, block: Block, base: Path) -> None:
        env, cwd = self._state(base)
        script = base.with_suffix(".sh")
        script.write_text(block.code)
        log = base.with_suffix(".out")
        handle = log.open("wb")
        self._logs.append(handle)
        process = subprocess.Popen(["bash", "-eo", "pipefail", str(script)], cwd=cwd, env=env,
                                   stdin=subprocess.DEVNULL, stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.background.append(Background(block, process, log))

    def _wait_ready(self, block: Block) -> None:
        condition = block.options["ready"]
        mine = next((b for b in self.background if b.block is block), None)
        env, cwd = self._state(self.work / "ready")

        def ready() -> bool:
            if mine is not None and mine.process.poll() is not None:
                self.fail(block, f"exited with {mine.process.returncode} before it was ready "
                                 f"({condition})\n--- its output ---\n{_read(mine.log)}")
            if condition.startswith(("http://", "https://")):
                try:
                    with urllib.request.urlopen(condition, timeout=5) as answer:
                        return bool(answer.status == 200)
                except (OSError, urllib.error.URLError):
                    return False
            if condition.startswith("output:"):
                return mine is not None and condition[7:] in _read(mine.log)
            return subprocess.run(["bash", "-c", condition], cwd=cwd, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=60).returncode == 0

        deadline = time.monotonic() + float(block.options.get("timeout") or READY_TIMEOUT)
        while not ready():
            if time.monotonic() > deadline:
                output = f"\n--- its output ---\n{_read(mine.log)}" if mine else ""
                self.fail(block, f"not ready in time ({condition}){output}")
            time.sleep(0.2)

    def finish(self) -> list[str]:
        """Stop everything the page started; the problems found while stopping."""
        problems: list[str] = []
        for session in (self.shell, self.python):
            if session is not None and session.poll() is None:
                assert session.stdin is not None
                with contextlib.suppress(OSError):
                    session.stdin.close()
                try:
                    session.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    _kill_group(session)
        env, cwd = self._state(self.work / "stop")
        for item in reversed(self.background):
            process = item.process
            if process.poll() is None:
                if "stop" in item.block.options:
                    subprocess.run(["bash", "-c", item.block.options["stop"]], cwd=cwd, env=env,
                                   capture_output=True, timeout=320)
                else:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    problems.append(f"{item.block.where}: did not stop within 120 s")
                    _kill_group(process)
            if process.returncode not in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
                problems.append(f"{item.block.where}: exited with {process.returncode}\n"
                                f"{_read(item.log)[-3000:]}")
        for handle in self._logs:
            handle.close()
        return problems


def _kill_group(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-6000:]
    except OSError:
        return "(no output)"


def _leftovers(project: Path, env: dict[str, str]) -> None:
    """Whatever a failed page left running: supervisord, a PostgreSQL cluster."""
    python = str(project / ".venv" / "bin" / "python")
    if (project / "supervisor" / "supervisord.pid").exists():
        subprocess.run([python, "scripts/stop_supervisord.py", "-c", "supervisor/supervisord.conf"],
                       cwd=project, env=env, capture_output=True, timeout=320)
    if (project / "data" / "pg").exists():
        subprocess.run([python, "scripts/pg_cluster.py", "stop"], cwd=project, env=env,
                       capture_output=True, timeout=120)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("page", _pages(), ids=lambda path: path.name)
def test_every_command_of_the_page_works_as_written(page: Path, doc_ports: None) -> None:
    blocks = [block for block in blocks_of(page) if not block.skipped]
    if any(block.needs_postgres for block in blocks) and (reason := unavailable_reason()):
        if require_postgres():
            pytest.fail(f"PQ_REQUIRE_POSTGRES is set but PostgreSQL cannot run: {reason}")
        pytest.skip(f"PostgreSQL not available: {reason}")
    for port in DOC_PORTS:
        wait_for(lambda port=port: _port_free(port), timeout=120, interval=0.5,
                 message=f"port {port} to be free (something else listens on it)")
    project = project_copy()
    run = PageRun(project, project.parent / "blocks", page_environment(project))
    run.work.mkdir()
    try:
        for block in blocks:
            run.run(block)
        problems = run.finish()
        assert not problems, "\n".join(problems)
    finally:
        run.finish()
        _leftovers(project, run.env)
        shutil.rmtree(project.parent, ignore_errors=True)
