"""The real server process: ``python api.py --port 0``, driven over HTTP on the port it bound."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, ServedApi, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


# uvicorn's line once it listens; with --port 0 it names the port the kernel gave it.


def listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses (hex, as in /proc/net/tcp) listening on ``port``."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(address)
    return found


@pytest.fixture
def server(db_url: str, tmp_path: Path, subprocess_env: dict[str, str]
           ) -> Iterator[tuple[str, int]]:
    env = {**subprocess_env, "PQ_API_TOKEN": "e2e-token"}
    env.pop("PQ_API_HOST", None)
    api = ServedApi([sys.executable, str(ROOT / "api.py"), "--port", "0", "--db", db_url,
                     "--log-level", "info"],  # info: the level of the line naming the port
                    log=tmp_path / "api.log", cwd=tmp_path, env=env)
    try:
        base = api.wait_listening()

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=10).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=60, interval=0.1, message="api.py to answer /healthz")
        yield base, int(base.rsplit(":", 1)[1])
    finally:
        running = api.process.poll() is None
        code = api.stop(timeout=90)
        assert not running or code == 0, api.text()[-3000:]


def test_produce_consume_ack_over_http(server: tuple[str, int]) -> None:
    base, port = server
    auth = {"Authorization": "Bearer e2e-token"}
    with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
        assert httpx.get(f"{base}/queues", timeout=5).status_code == 401
        created = client.post("/enqueue", json={"queue": "emails", "payload": {"to": "a@b.c"}})
        assert created.status_code == 201
        claimed = client.get("/dequeue", params={"queue": "emails", "wait": 5})
        assert claimed.status_code == 200 and claimed.json()["payload"] == {"to": "a@b.c"}
        job = claimed.json()
        acked = client.post("/ack", json={"id": job["id"], "lease_token": job["lease_token"]})
        assert acked.status_code == 200
        assert client.get(f"/jobs/{job['id']}").json()["state"] == "done"
        assert client.post("/dequeue", json={"queue": "emails"}).status_code == 204
        assert "pq_api_acked_total 1.0" in client.get("/metrics").text
    if Path("/proc/net/tcp").exists():
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only


@pytest.mark.parametrize("args, env", [
    (["--port", "70000"], {}),
    ([], {"PQ_API_PORT": "eighty"}),
    ([], {"PQ_API_READ_TOKEN": "read-only"}),
])
def test_bad_configuration_exits_2(
    tmp_path: Path, subprocess_env: dict[str, str], args: list[str], env: dict[str, str]
) -> None:
    clean = {k: v for k, v in subprocess_env.items() if not k.startswith("PQ_API_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "api.py"), "--db", str(tmp_path / "q.db"), *args],
        env={**clean, **env}, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "error" in result.stderr


def test_the_default_bind_address_is_loopback() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        import api

        args = api.parse_args([])
    finally:
        sys.path.remove(str(ROOT))
    if "PQ_API_HOST" not in os.environ:
        assert args.host == "127.0.0.1"
    assert args.port == int(os.environ.get("PQ_API_PORT", 8000))


def test_a_long_poll_abandoned_by_its_client_does_not_keep_a_job(
    server: tuple[str, int]
) -> None:
    base, port = server
    auth = {"Authorization": "Bearer e2e-token"}
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /dequeue?queue=emails&wait=15 HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer e2e-token\r\n\r\n")
        sock.shutdown(socket.SHUT_RDWR)  # the client gives up on its long poll
    with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
        job_id = client.post("/enqueue", json={"queue": "emails", "payload": 1}).json()["id"]

        def settled() -> bool:
            job = client.get(f"/jobs/{job_id}").json()
            return bool(job["state"] == "ready")

        # Either the abandoned poll never claimed it, or it gave it straight back.
        wait_for(settled, timeout=30, message="the job to be ready")
        claimed = client.get("/dequeue", params={"queue": "emails", "wait": 5}).json()
        assert claimed["id"] == job_id and claimed["attempts"] == 1


def test_concurrent_consumers_receive_each_job_exactly_once(server: tuple[str, int]) -> None:
    import threading

    base, _ = server
    auth = {"Authorization": "Bearer e2e-token"}
    total = 120
    with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
        for n in range(total):
            assert client.post("/enqueue", json={"queue": "work", "payload": n}).status_code == 201
    received: list[int] = []
    lock = threading.Lock()
    errors: list[str] = []

    def consume() -> None:
        with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
            while True:
                response = client.post("/dequeue", json={"queue": "work"})
                if response.status_code == 204:
                    return
                job = response.json()
                ack = client.post("/ack", json={"id": job["id"],
                                                "lease_token": job["lease_token"]})
                if ack.status_code != 200:
                    errors.append(ack.text)
                with lock:
                    received.append(job["payload"])

    threads = [threading.Thread(target=consume) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sorted(received) == list(range(total))
