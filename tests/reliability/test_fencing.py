"""2. Fencing: a consumer stopped (SIGSTOP) past its lease cannot touch the job afterwards.

Each round: A claims a job with a short lease, is SIGSTOPped, the lease expires, B claims and
acks, A is SIGCONTed and tries ack, extend and nack. Pass: all three raise ``LeaseLost``, the
job stays done with attempts = 2, B's result untouched. Long: 1,000 rounds; short: 20.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from persistent_queue import JobState, Queue
from tests.reliability.checker import integrity_check
from tests.reliability.soak import SOAK, report, scale
from tests.support import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600 if SOAK else 300)]

ROUNDS = int(scale(20, 1000))
LEASE = 0.3


def _ask(child: subprocess.Popen[str], command: str) -> str:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(command + "\n")
    child.stdin.flush()
    return str(json.loads(child.stdout.readline()))


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _expired(q: Queue, job_id: int) -> bool:
    expires = q.get_job(job_id).lease_expires_at
    return expires is not None and expires < q.now()


def test_a_stopped_consumer_is_fenced_off(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    db = tmp_path / "queue.db"
    with Queue(db, durability="normal") as b:
        b.create_queue("fence", max_attempts=10)
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.fencing_child", str(db), "fence",
             str(LEASE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=subprocess_env)
        rejected = 0
        started = time.monotonic()
        try:
            for _ in range(ROUNDS):
                job_id = b.enqueue("fence", {"round": True}).id
                assert _ask(child, "claim") == str(job_id)
                child.send_signal(signal.SIGSTOP)
                wait_for(lambda: _state(child.pid) == "T", timeout=30, message="A stopped")
                wait_for(partial(_expired, b, job_id), timeout=30, interval=0.01,
                         message="A's lease to expire")
                taken = b.dequeue("fence", wait=30)
                assert taken is not None and taken.id == job_id and taken.attempts == 2
                b.ack(taken)
                before = b.get_job(job_id)
                child.send_signal(signal.SIGCONT)
                answers = [_ask(child, op) for op in ("ack", "extend", "nack")]
                assert answers == ["LeaseLost"] * 3
                rejected += 3
                after = b.get_job(job_id)
                assert after.state is JobState.DONE and after.attempts == 2
                assert after == before  # A changed nothing
        finally:
            child.kill()
            child.wait()
        assert b.stats("fence").done == ROUNDS and b.stats("fence").pending == 0
        assert integrity_check(db) == "ok"
    report("fencing", rounds=ROUNDS, rejected=rejected,
           seconds=round(time.monotonic() - started, 1))
