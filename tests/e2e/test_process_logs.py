"""Every process logs JSON lines: the scheduler and the API (uvicorn's own lines included) run
as real processes, and the producer logs each batch it publishes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from persistent_queue import Queue
from tests.support import ROOT, ServedApi, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KEYS = {"time", "level", "logger", "message"}


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object with the keys every record has."""
    records = []
    for line in text.splitlines():
        record = json.loads(line)  # a plain-text line fails the test here
        assert isinstance(record, dict) and KEYS <= record.keys(), line
        records.append(record)
    return records


def test_the_scheduler_logs_json_lines(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    db = tmp_path / "q.db"
    with Queue(db) as q:
        q.schedule("reports", {"kind": "tick"}, every=0.2, name="tick", start_at=q.now())
    log = tmp_path / "scheduler.log"
    with log.open("wb") as output:
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "persistent_queue.scheduler", "--db", str(db),
             "--interval", "0.2"], cwd=tmp_path, env=subprocess_env, stdout=output,
            stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: log.read_text().count("fired schedule") >= 2, timeout=60,
                 interval=0.05, message="the scheduler to fire twice")
    finally:
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(timeout=60) == 0
    records = json_lines(log.read_text())
    assert records[0]["message"].startswith("scheduler scheduler-")
    fired = [r for r in records if r["message"].startswith("fired schedule tick")]
    assert fired and all(r["queue"] == "reports" and r["job_id"] >= 1 for r in fired)
    assert {r["logger"] for r in records} == {"persistent_queue.scheduler"}
    assert records[-1]["message"].startswith("scheduler stopped after firing")


def test_the_api_logs_json_lines_with_its_access_lines(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    api = ServedApi([sys.executable, str(ROOT / "api.py"), "--port", "0", "--db",
                     str(tmp_path / "q.db"), "--log-level", "info"],
                    log=tmp_path / "api.log", cwd=tmp_path, env=subprocess_env)
    try:
        base = api.wait_listening()
        assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200
        assert httpx.get(f"{base}/no-such-route", timeout=30).status_code == 404
        wait_for(lambda: "/no-such-route" in api.text(), timeout=30, interval=0.05,
                 message="the access line")
    finally:
        assert api.stop(timeout=90) == 0, api.text()[-3000:]
    records = json_lines(api.text())
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert [(r["method"], r["path"], r["status"]) for r in access] == [
        ("GET", "/healthz", 200), ("GET", "/no-such-route", 404)]
    assert all(r["client"].startswith("127.0.0.1:") for r in access)
    messages = [r["message"] for r in records]
    assert any(m.startswith("Uvicorn running on http://127.0.0.1:") for m in messages)
    assert "Finished server process" in messages[-1]
    assert not any("color_message" in r for r in records)


def test_the_producer_logs_each_batch_it_publishes(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    source = tmp_path / "input.txt"
    source.write_text("a@example.com\nb@example.com\n\nc@example.com\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "producer.py"), "--db", str(tmp_path / "q.db"),
         "--queue", "emails", "--input", str(source), "--batch", "2"],
        cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    batches = [r for r in json_lines(done.stdout) if r["message"].startswith("published ")]
    assert [(r["lines"], r["first_line"], r["last_line"], r["offset"]) for r in batches] == [
        (2, 1, 2, 28), (1, 4, 4, 43)]
    assert all(r["queue"] == "emails" and r["source"] == str(source) and r["level"] == "info"
               and r["duration_ms"] >= 0 for r in batches)
