"""producer.py as a real process: file follow across restarts, stdin, synthetic load."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.support import ROOT, wait_for

pytestmark = pytest.mark.e2e


def producer(db: Path, env: dict[str, str], *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "producer.py"), "--db", str(db), "--queue", "in", *args]


def payloads(q: Queue) -> list[object]:
    return [job.payload for job in q.list_jobs("in", limit=1000, newest_first=False)]


def test_follow_publishes_each_line_once_across_restarts(
        real_queue: Queue, db_path: Path, subprocess_env: dict[str, str],
        tmp_path: Path) -> None:
    source = tmp_path / "input.txt"
    source.write_text("one\n{\"n\": 2}\n")
    command = producer(db_path, subprocess_env, "--input", str(source), "--follow")
    proc = subprocess.Popen(command, env=subprocess_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(payloads(real_queue)) == 2, timeout=60, message="2 jobs")
        with source.open("a") as handle:
            handle.write("three\nfou")  # an unfinished line is not published yet
        wait_for(lambda: len(payloads(real_queue)) == 3, timeout=60, message="3 jobs")
        assert [w.kind for w in real_queue.workers()] == ["producer"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    with source.open("a") as handle:
        handle.write("r\nfive\n")
    proc = subprocess.Popen(command, env=subprocess_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(payloads(real_queue)) >= 5, timeout=60, message="5 jobs")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert payloads(real_queue) == ["one", {"n": 2}, "three", "four", "five"]


def test_truncated_file_starts_over(real_queue: Queue, db_path: Path,
                                    subprocess_env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "input.txt"
    source.write_text("a\nb\nc\n")
    command = producer(db_path, subprocess_env, "--input", str(source))
    assert subprocess.run(command, env=subprocess_env, capture_output=True,
                          timeout=60).returncode == 0
    source.write_text("d\n")
    assert subprocess.run(command, env=subprocess_env, capture_output=True,
                          timeout=60).returncode == 0
    assert payloads(real_queue) == ["a", "b", "c", "d"]


def test_stdin_and_strict_json(real_queue: Queue, db_path: Path,
                               subprocess_env: dict[str, str]) -> None:
    done = subprocess.run(producer(db_path, subprocess_env, "--input", "-", "--format", "json"),
                          input='{"a": 1}\nnot json\n[2]\n', env=subprocess_env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert payloads(real_queue) == [{"a": 1}, [2]]
    assert '"skipped": 1' in done.stderr


def test_synthetic_load_and_bad_flags(real_queue: Queue, db_path: Path,
                                      subprocess_env: dict[str, str]) -> None:
    done = subprocess.run(producer(db_path, subprocess_env, "--rate", "500/s", "--count", "40",
                                   "--payload", '{"seconds": 0}'),
                          env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found = payloads(real_queue)
    assert len(found) == 40 and {p["seq"] for p in found} == set(range(40))  # type: ignore[index]
    for bad in (["--rate", "fast"], [], ["--rate", "5/s", "--input", "-"]):
        proc = subprocess.run(producer(db_path, subprocess_env, *bad), env=subprocess_env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
