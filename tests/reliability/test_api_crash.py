"""5b. API crashes: ``api.py`` SIGKILLed 500 ms after each start while clients enqueue and retry.

Each request carries a dedup key, and a request whose answer was lost to a kill is retried
with the same key. Pass: every job answered with a 2xx is stored, with the payload that
client sent, and exactly once (no payload stored twice, however many retries a kill caused);
``integrity_check`` ok. Long: 60 s of kills; short: 15 s.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from persistent_queue import Queue
from tests.reliability.checker import all_jobs, integrity_check
from tests.reliability.soak import report, scale
from tests.support import ROOT, free_ports, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SECONDS = float(scale(15, 60))
UP_FOR = 0.5
KILLS, ACKNOWLEDGED = 3, 20  # at least: fewer would prove little
GIVE_UP = 240.0  # a loaded machine starts api.py slowly: kill on past SECONDS up to this


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def test_killed_api_never_acknowledges_a_job_it_lost(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    db = tmp_path / "queue.db"
    with Queue(db) as q:
        q.create_queue("api")
    # A port outside the ephemeral range: while the server is down the client keeps
    # connecting to it, and the kernel must never hand that client the port itself.
    [port] = free_ports(1)
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, str(ROOT / "api.py"), "--db", str(db), "--port", str(port)]
    env = {k: v for k, v in subprocess_env.items() if k != "PQ_API_TOKEN"}
    acknowledged: dict[int, int] = {}  # job id -> the number the client sent
    stop = threading.Event()
    cut = []
    failures: list[BaseException] = []

    def client() -> None:
        try:
            send()
        except BaseException as exc:  # handed to the test, which asserts there was none
            failures.append(exc)

    def send() -> None:  # sends numbers in order; a number is retried until it gets a 2xx
        number = 0
        with httpx.Client(base_url=base, timeout=5) as http:
            while not stop.is_set():
                try:
                    answer = http.post("/enqueue", json={"queue": "api", "payload": {"n": number},
                                                         "dedup_key": f"n-{number}"})
                except httpx.HTTPError:
                    cut.append(number)
                    stop.wait(0.05)
                    continue
                # 201: stored now; 200: an earlier, cut-off attempt had stored it.
                assert answer.status_code in (200, 201), answer.text
                acknowledged[answer.json()["id"]] = number
                number += 1

    sender = threading.Thread(target=client)
    kills, started = 0, time.monotonic()
    sender.start()
    try:
        while not failures and (
                time.monotonic() - started < SECONDS
                or (kills < KILLS or len(acknowledged) <= ACKNOWLEDGED)
                and time.monotonic() - started < GIVE_UP):
            log = tmp_path / f"api-{kills}.log"
            with log.open("wb") as output:
                server = subprocess.Popen(command, env=env, stdout=output,
                                          stderr=subprocess.STDOUT)
            try:
                wait_for(lambda s=server: _up(base) or s.poll() is not None, timeout=120,
                         interval=0.05, message="the API")
                assert server.poll() is None, log.read_text(errors="replace")[-3000:]
                time.sleep(UP_FOR)  # the kill cadence, not a synchronisation
            finally:
                server.kill()
                server.wait()
                kills += 1
    finally:
        stop.set()
        sender.join(timeout=60)
    with Queue(db) as q:
        jobs = all_jobs(q, "api")
    stored = {j.id: j.payload["n"] for j in jobs}  # type: ignore[index]
    copies = Counter(stored.values())
    report("api-crash", kills=kills, acknowledged=len(acknowledged), rows=len(jobs),
           extra_copies=sum(n - 1 for n in copies.values()))
    assert not failures, failures
    assert len(acknowledged) > ACKNOWLEDGED and kills >= KILLS
    assert all(stored.get(i) == n for i, n in acknowledged.items())  # no 2xx job lost
    assert set(acknowledged.values()) <= set(copies)
    assert all(n == 1 for n in copies.values()), copies.most_common(3)  # stored exactly once
    assert integrity_check(db) == "ok"
