"""consumer.py as a real process with real signals: warm stop, cold stop, kill -9."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from persistent_queue import JobState, Queue
from tests.e2e.handlers import started
from tests.support import ROOT, wait_for

pytestmark = pytest.mark.e2e


def start_consumer(db: Path, env: dict[str, str], tmp_path: Path, *extra: str,
                   handler: str = "persistent_queue.handlers:sleep") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "consumer.py"), "--db", str(db), "--queue", "work",
         "--handler", handler, "--wait", "0.3", "--log-dir", str(tmp_path / "logs"), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_until(proc: subprocess.Popen[str], text: str) -> str:
    """Read the process's output up to the line containing ``text`` (or its exit)."""
    assert proc.stdout is not None
    seen = ""
    for line in proc.stdout:
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"exited before printing {text!r}:\n{seen}")


def leased(q: Queue, job_id: int) -> bool:
    return q.get_job(job_id).state is JobState.LEASED


def start_announcing_consumer(db: Path, env: dict[str, str],
                              tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    """A consumer whose handler marks each job it begins in the returned folder: a leased row
    alone does not mean the worker holds the job yet (the claim commits before it returns)."""
    folder = tmp_path / "started"
    folder.mkdir(exist_ok=True)
    proc = start_consumer(db, {**env, "PQ_STARTED_DIR": str(folder)}, tmp_path,
                          handler="tests.e2e.handlers:announce_then_sleep")
    return proc, folder


def test_sigterm_mid_job_finishes_and_acks_it(real_queue: Queue, db_path: Path,
                                              subprocess_env: dict[str, str],
                                              tmp_path: Path) -> None:
    job = real_queue.enqueue("work", {"seconds": 3})
    proc, folder = start_announcing_consumer(db_path, subprocess_env, tmp_path)
    wait_for(lambda: started(folder, job.id), timeout=60, message="the handler to start")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    stored = real_queue.get_job(job.id)
    assert stored.state is JobState.DONE and stored.attempts == 1
    assert "finishing 1 job(s) in hand" in out
    logged = [json.loads(line) for line in out.splitlines()]  # structured stdout for supervisord
    assert not any(entry.get("result") == "acked" for entry in logged)  # DEBUG only: the CSV
    with (tmp_path / "logs" / "processed_log.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["job_id"], row["result"]) for row in rows] == [(str(job.id), "acked")]
    worker = real_queue.workers()[0]
    assert worker.state == "stopped" and worker.processed == 1


def test_second_signal_gives_the_job_back_at_once(real_queue: Queue, db_path: Path,
                                                  subprocess_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    job = real_queue.enqueue("work", {"seconds": 120})
    proc, folder = start_announcing_consumer(db_path, subprocess_env, tmp_path)
    wait_for(lambda: started(folder, job.id), timeout=60, message="the handler to start")
    proc.send_signal(signal.SIGTERM)
    seen = read_until(proc, "finishing 1 job(s) in hand")  # the warm stop has begun
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    out = seen + out
    assert proc.returncode == 3, out
    stored = real_queue.get_job(job.id)
    assert stored.state is JobState.READY
    assert stored.attempts == 0  # a requeue does not count the attempt


def test_kill_9_mid_job_the_job_comes_back_after_the_lease(
        real_queue: Queue, db_path: Path, subprocess_env: dict[str, str],
        tmp_path: Path) -> None:
    real_queue.create_queue("work", visibility_timeout=1.0)
    job = real_queue.enqueue("work", {"seconds": 60})
    victim = start_consumer(db_path, subprocess_env, tmp_path)
    wait_for(lambda: leased(real_queue, job.id), timeout=60, message="the job to start")
    victim.kill()
    victim.wait(timeout=30)
    assert real_queue.get_job(job.id).state is JobState.LEASED  # nobody acked or gave it back
    survivor = start_consumer(db_path, subprocess_env, tmp_path,
                              handler="persistent_queue.handlers:echo")
    try:
        wait_for(lambda: real_queue.get_job(job.id).state is JobState.DONE, timeout=60,
                 message="the job to be redelivered and acked")
    finally:
        survivor.send_signal(signal.SIGTERM)
        survivor.communicate(timeout=60)
    assert real_queue.get_job(job.id).attempts == 2
    assert "lease_expired" in [e.event for e in real_queue.history(job.id)]


def test_bad_configuration_exits_2_without_a_traceback(db_path: Path,
                                                       subprocess_env: dict[str, str],
                                                       tmp_path: Path) -> None:
    for extra in (["--handler", "nowhere_module:run"], ["--concurrency", "0"]):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "consumer.py"), "--db", str(db_path), "--queue",
             "work", *extra], env=subprocess_env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2
        assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
