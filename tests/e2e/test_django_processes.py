"""Django tasks through real processes: ``pq worker --django SETTINGS`` (process executor,
warm stop on SIGTERM), and the whole scenario under Django 6 on Python 3.12.

The Django 6 test builds a Python 3.12 virtualenv once, at ``.venv-django6/`` in the project
(git-ignored; rebuilt when pyproject.toml changes), with ``pip install -e '.[django]'``: about
20 s the first time with the package index at hand, then the scenario alone takes 2-3 s. It
is skipped, with the reason, on a machine without Python 3.12 (``python3.12`` on the PATH or
a pyenv version 3.12.x).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT, wait_for

pytest.importorskip("django")
PROJECT = ROOT / "tests" / "django_project"
sys.path.insert(0, str(PROJECT))
os.environ["DJANGO_SETTINGS_MODULE"] = "djproject.settings"

import django  # noqa: E402

django.setup()
# The settings are loaded: other tests' processes (the docs' sessions) must not inherit them.
del os.environ["DJANGO_SETTINGS_MODULE"]

from django.test import override_settings  # noqa: E402
from shop.tasks import ShopError, add, fail, send_email, until_cancelled  # noqa: E402

from persistent_queue import JobState, Queue  # noqa: E402
from persistent_queue.contrib.django.backend import close_queues  # noqa: E402
from persistent_queue.contrib.django.compat import TaskResultStatus  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VENV = ROOT / ".venv-django6"


def project_env(db: str) -> dict[str, str]:
    env = dict(os.environ, PQ_DJANGO_DB=db, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


@pytest.fixture
def db(db_url: str) -> Iterator[str]:
    with override_settings(TASKS={"default": {
            "BACKEND": "persistent_queue.contrib.django.Backend",
            "QUEUES": ["default", "emails"],
            "OPTIONS": {"db": db_url, "durability": "normal"}}}):
        yield db_url
    close_queues()


def test_pq_worker_django_runs_tasks_in_child_processes_and_stops_warm(
        db: str, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    pq = Path(sys.executable).with_name("pq")
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [str(pq), "worker", "--django", "djproject.settings", "--executor", "process",
             "--concurrency", "2", "--wait", "0.2", "--log-format", "text", "--log-dir", ""],
            cwd=PROJECT, env=project_env(db), stdout=output, stderr=subprocess.STDOUT)
    try:
        backend = add.get_backend()
        sums = [add.enqueue(n, n) for n in range(5)]
        email = send_email.enqueue("a@b.c")
        boom = fail.enqueue("in a child")

        def finished() -> bool:
            if worker.poll() is not None:
                pytest.fail(f"the worker exited with {worker.returncode}:\n{log.read_text()}")
            return all(backend.get_result(r.id).is_finished for r in [*sums, email, boom])

        wait_for(finished, timeout=90, interval=0.1, message="the tasks to finish")
        assert [add.get_result(r.id).return_value for r in sums] == [0, 2, 4, 6, 8]
        assert send_email.get_result(email.id).return_value == {"sent": "a@b.c"}
        failed = fail.get_result(boom.id)
        assert failed.status == TaskResultStatus.FAILED
        assert failed.errors[0].exception_class is ShopError
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_a_running_task_cancelled_by_an_operator_is_failed(db: str, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "pq_worker", "--wait", "0.2"],
            cwd=PROJECT, env=project_env(db), stdout=output, stderr=subprocess.STDOUT)
    try:
        running = until_cancelled.enqueue(120)
        backend = until_cancelled.get_backend()
        wait_for(lambda: backend.get_result(running.id).status == TaskResultStatus.RUNNING,
                 timeout=60, message="the task to start")
        Queue(db).cancel(int(running.id), reason="changed my mind")
        wait_for(lambda: backend.get_result(running.id).is_finished, timeout=60,
                 message="the task to stop")
        result = backend.get_result(running.id)
        assert result.status == TaskResultStatus.FAILED and result.finished_at is not None
        assert Queue(db).get_job(int(running.id)).state is JobState.CANCELLED
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def python312() -> str | None:
    """A Python 3.12 interpreter: ``python3.12`` on the PATH, else a pyenv 3.12.x."""
    candidates = [shutil.which("python3.12")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(p) for p in sorted(pyenv_root.glob("versions/3.12*/bin/python3.12"))]
    for candidate in filter(None, candidates):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            answer = subprocess.run([candidate, "-c", "import sys; print(sys.version_info >= "
                                     "(3, 12))"], capture_output=True, text=True, timeout=30)
            if answer.stdout.strip() == "True":
                return candidate
    return None


@contextlib.contextmanager
def django6_venv(interpreter: str) -> Iterator[Path]:
    """``.venv-django6/bin/python`` with Django 6 and this package (editable), built once;
    no other test process rebuilds it while the caller uses it (a shared lock)."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()
                            + interpreter.encode()).hexdigest()
    stamp = VENV / ".pq-stamp"
    lock = Path(tempfile.gettempdir()) / f"persistent-queue-venv-django6-{os.getuid()}.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # build alone
        if not (stamp.exists() and stamp.read_text() == wanted):
            shutil.rmtree(VENV, ignore_errors=True)
            subprocess.run([interpreter, "-m", "venv", str(VENV)], check=True, timeout=300)
            subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", "-e", f"{ROOT}[django]"],
                           check=True, timeout=600, cwd=ROOT)
            stamp.write_text(wanted)
        fcntl.flock(held, fcntl.LOCK_SH)  # use it together
        yield VENV / "bin" / "python"


def test_the_scenario_under_django_6_on_python_3_12(tmp_path: Path) -> None:
    interpreter = python312()
    if interpreter is None:
        pytest.skip("no Python 3.12 here (python3.12 on the PATH or a pyenv 3.12.x): "
                    "Django 6 needs it")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")}
    env.update(PQ_DJANGO_DB=str(tmp_path / "queue.db"), PYTHONUNBUFFERED="1")
    with django6_venv(interpreter) as python:
        run = subprocess.run([str(python), "scenario.py"], cwd=PROJECT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout.splitlines()[-1])
    assert report["django"].split(".")[0] == "6", report
    assert report["worker_exit"] == 0, report["worker_output"]
    assert report["before"] == "READY"
    assert report["status"] == {"low": "SUCCESSFUL", "high": "SUCCESSFUL", "failed": "FAILED",
                                "email": "SUCCESSFUL", "deferred": "SUCCESSFUL",
                                "coroutine": "SUCCESSFUL"}
    assert report["values"] == {"low": 2, "high": 4, "email": {"sent": "a@b.c"},
                                "deferred": 6, "coroutine": 8}
    assert report["error_class"] == ["shop.tasks.ShopError"]
    assert "boom" in report["error_text"][0]
    assert report["high_before_low"] and report["deferred_on_time"]
    assert report["attempts"] == 1 and report["aget_result"] == 4


@pytest.mark.parametrize("flags, message", [
    (["--django", "nosuch.settings"], "cannot load the Django settings 'nosuch.settings'"),
    (["--django", "djproject.settings", "--app", "shop.tasks:add"], "give --app or --django"),
])
def test_pq_worker_django_refuses_bad_configuration(tmp_path: Path, flags: list[str],
                                                    message: str) -> None:
    pq = Path(sys.executable).with_name("pq")
    run = subprocess.run([str(pq), "worker", *flags], cwd=PROJECT,
                         env=project_env(str(tmp_path / "queue.db")), capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and message in run.stderr, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
