"""11. Exposure: the whole system from the repository's supervisord config, with secrets set.

Pass: no socket of any supervised process (API, both consoles, producer, consumers, janitor)
listens on 0.0.0.0 or :: (read from /proc/net/tcp and tcp6 through each process's fds); with
``PQ_API_TOKEN`` set, every route of the app except ``/healthz`` answers 401 to a request
without a token or with a wrong one (the live server, every method of every route); with
``PQ_CONSOLE_PASSWORD`` set, both consoles show only the login form.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from persistent_queue import Queue
from persistent_queue.api import create_app
from tests.reliability.supervised import Supervised, children
from tests.support import ROOT, free_ports, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PROGRAMS = ["api", "ops_console", "admin_console", "producer", "consumer:consumer_00",
            "consumer:consumer_01", "janitor"]
OPEN = {"/healthz"}
LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1 as in /proc


def _listening(pids: list[int]) -> list[tuple[str, int]]:
    """(hex address, port) of every listening TCP socket held by ``pids``."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = fd.readlink().name
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append((address, int(port, 16)))
    return found


def _family(pid: int) -> list[int]:
    family, todo = [], [pid]
    while todo:
        current = todo.pop()
        family.append(current)
        todo += children(current)
    return family


def _routes() -> list[tuple[str, str]]:
    """Every (method, path) the app serves: its OpenAPI paths plus the documentation pages."""
    app = create_app(":memory:")
    found = {(method.upper(), path) for path, operations in app.openapi()["paths"].items()
             for method in operations}
    for route in app.routes:
        for method in getattr(route, "methods", None) or ():
            found.add((method, route.path))  # type: ignore[attr-defined]
    return sorted((m, re.sub(r"\{[^}]+\}", "1", p)) for m, p in found if m != "HEAD")


def test_nothing_listens_beyond_loopback_and_nothing_opens_without_secrets(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    env = {**subprocess_env, "PQ_API_TOKEN": "t0ken-for-the-test",
           "PQ_CONSOLE_PASSWORD": "passw0rd-for-the-test"}
    ports = dict(zip(("api", "ops_console", "admin_console"), free_ports(3), strict=True))
    env.update(PQ_API_PORT=str(ports["api"]), PQ_OPS_PORT=str(ports["ops_console"]),
               PQ_ADMIN_PORT=str(ports["admin_console"]))  # read by supervisord.conf
    system = Supervised(tmp_path, env, with_servers=True)
    system.setup_db()
    system.start()
    try:
        system.wait_running(PROGRAMS, timeout=240)
        base = f"http://127.0.0.1:{ports['api']}"
        wait_for(lambda: _healthy(base), timeout=120, interval=0.5, message="the API")
        pids = [p for name in PROGRAMS for p in _family(system.pid(name))]
        wait_for(lambda: {p for _, p in _listening(pids)} >= set(ports.values()),
                 timeout=120, interval=0.5, message="every server listening")
        sockets = _listening(pids)
        assert sockets and all(address in LOOPBACK for address, _ in sockets), sockets
        routes = _routes()
        assert len(routes) > 20
        with httpx.Client(base_url=base, timeout=60) as client:
            for method, path in routes:
                for headers in ({}, {"Authorization": "Bearer wrong"}):
                    answer = client.request(method, path, headers=headers)
                    if path in OPEN:
                        assert answer.status_code in (200, 503)
                    else:
                        assert answer.status_code == 401, (method, path, answer.status_code)
            granted = client.get("/stats", headers={"Authorization": "Bearer t0ken-for-the-test"})
            assert granted.status_code == 200
    finally:
        system.shutdown()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=5).status_code in (200, 503)
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("script", ["ops_console.py", "admin_console.py"])
def test_consoles_show_only_the_login(script: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "queue.db"
    with Queue(db) as q:
        q.enqueue("secret-queue", {"card": "4111"})
        q.move_to_dead_letter_queue(q.dequeue("secret-queue"), reason="secret reason")  # type: ignore[arg-type]
    monkeypatch.setenv("PQ_DB", str(db))
    monkeypatch.setenv("PQ_CONSOLE_PASSWORD", "passw0rd-for-the-test")
    app = AppTest.from_file(str(ROOT / script), default_timeout=60)
    app.run(timeout=60)
    assert not app.exception
    assert [t.label for t in app.text_input] == ["Password"]
    assert not app.tabs and not app.dataframe and not app.metric and not app.table
    shown = " ".join(str(e.value) for kind in ("markdown", "text", "caption", "code", "json")
                     for e in getattr(app, kind))
    assert "secret" not in shown and "4111" not in shown
