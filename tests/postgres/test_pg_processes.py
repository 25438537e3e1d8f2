"""The processes on a PostgreSQL URL: they run, report the server, and never show a password.

The session cluster trusts local connections, so a URL may carry any password and still work:
that lets every test below put a secret in the URL and assert it appears nowhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from persistent_queue import Queue
from persistent_queue.api import create_app
from tests.support import ROOT

pytestmark = pytest.mark.postgres

SECRET = "s3cr3t-Pa55"


def with_password(url: str) -> str:
    """``url`` with ``SECRET`` as the password (ignored by the trusting test cluster)."""
    scheme, _, rest = url.partition("://")
    user, _, host = rest.partition("@")
    return f"{scheme}://{user}:{SECRET}@{host}"


def run(argv: list[str], env: dict[str, str], timeout: float = 120
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def test_pq_init_and_doctor_report_the_server_without_the_password(
    pg_url: str, subprocess_env: dict[str, str]
) -> None:
    url = with_password(pg_url)
    pq = [sys.executable, "-m", "persistent_queue", "--db", url]
    init = run([*pq, "init"], subprocess_env)
    assert init.returncode == 0, init.stderr
    doctor = run([*pq, "doctor"], subprocess_env)
    assert doctor.returncode == 0, doctor.stderr
    assert "PostgreSQL" in doctor.stdout and "connections" in doctor.stdout
    assert "status          ok" in doctor.stdout
    as_json = run([*pq, "doctor", "--json"], subprocess_env)
    report = json.loads(as_json.stdout)
    assert report["backend"] == "postgresql" and report["ok"] is True
    for output in (init.stdout, doctor.stdout, as_json.stdout):
        assert SECRET not in output and ":***@" in output


def test_an_unreachable_server_is_a_readable_error_without_the_password(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    url = f"postgresql://someone:{SECRET}@127.0.0.1:1/nowhere"  # nothing listens on port 1
    env = {**subprocess_env, "PQ_DB": url}
    commands = {
        "pq": [sys.executable, "-m", "persistent_queue", "doctor"],
        "consumer": [sys.executable, str(ROOT / "consumer.py"), "--queue", "q",
                     "--log-dir", str(tmp_path)],
        "producer": [sys.executable, str(ROOT / "producer.py"), "--queue", "q",
                     "--input", str(tmp_path / "none.txt")],
        "api": [sys.executable, str(ROOT / "api.py"), "--port", "0"],
        "setup_db": [sys.executable, str(ROOT / "scripts" / "setup_db.py")],
    }
    for name, argv in commands.items():
        done = run(argv, env)
        assert done.returncode in (1, 2), (name, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, (name, done.stderr)
        assert "127.0.0.1" in done.stderr, (name, done.stderr)  # says where it failed
        assert SECRET not in done.stdout + done.stderr, name


def test_help_shows_the_default_database_masked(subprocess_env: dict[str, str]) -> None:
    env = {**subprocess_env, "PQ_DB": f"postgresql://someone:{SECRET}@db.example:5432/q"}
    for argv in ([sys.executable, "-m", "persistent_queue", "--help"],
                 [sys.executable, str(ROOT / "consumer.py"), "--help"],
                 [sys.executable, str(ROOT / "producer.py"), "--help"]):
        done = run(argv, env)
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout and "someone:***@db.example" in done.stdout


def test_healthz_reports_the_server(pg_url: str) -> None:
    with Queue(with_password(pg_url), durability="normal") as queue, \
            TestClient(create_app(queue)) as client:
        response = client.get("/healthz")
        assert response.status_code == 200, response.text
        checks = response.json()["checks"]
        assert checks["server"]["backend"] == "postgresql"
        assert checks["server"]["connections"] >= 1
        assert checks["integrity"]["ok"] and checks["writable"]["ok"]
        assert "disk" not in checks and SECRET not in response.text
        assert SECRET not in repr(queue)
