"""4. Graceful stop: ``supervisorctl stop`` while consumers run jobs of 0-3 s.

supervisord runs from the repository's config (a temp copy; only the handler is swapped for
one that sleeps ``payload["seconds"]``). Pass: every job in hand is acked or given back
(no job left leased), each consumer exits 0 within its ``stopwaitsecs`` (60 s), no child
process outlives it, and after a restart the queue drains with nothing lost.
"""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.reliability.soak import report, scale
from tests.reliability.supervised import Supervised, alive, children
from tests.support import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CONSUMERS = ["consumer:consumer_00", "consumer:consumer_01"]
STOPWAITSECS = 60
JOBS = int(scale(40, 400))


def test_supervisorctl_stop_finishes_or_returns_jobs(tmp_path: Path,
                                                      subprocess_env: dict[str, str]) -> None:
    system = Supervised(tmp_path, subprocess_env)
    system.edit_config("--handler tasks:send_email",
                       "--handler persistent_queue.handlers:sleep")
    db = system.setup_db()
    rng = random.Random(4)
    with Queue(db) as q:
        ids = [j.id for j in q.enqueue_many("emails", [{"seconds": round(rng.uniform(0, 3), 2)}
                                                      for _ in range(JOBS)])]
        system.start()
        try:
            system.wait_running(CONSUMERS)
            pids = [system.pid(name) for name in CONSUMERS]
            wait_for(lambda: q.stats("emails").leased >= 4, timeout=120,
                     message="jobs in hand")
            in_hand = q.stats("emails").leased
            started = time.monotonic()
            out = subprocess.run([*system.ctl, "stop", "consumer:*"], capture_output=True,
                                 text=True, timeout=STOPWAITSECS * 3)
            seconds = time.monotonic() - started
            assert out.stdout.count("stopped") == 2, out.stdout
            log = (tmp_path / "logs" / "supervisord.log").read_text()
            for name in ("consumer_00", "consumer_01"):
                assert f"stopped: {name} (exit status 0)" in log, log[-2000:]
            assert seconds < STOPWAITSECS
            assert not any(alive(pid) for pid in pids)
            assert not [c for pid in pids for c in children(pid)]
            stats = q.stats("emails")
            assert stats.leased == 0 and stats.expired == 0  # no orphan lease
            assert stats.done + stats.ready + stats.scheduled == JOBS
            subprocess.run([*system.ctl, "start", "consumer:*"], capture_output=True,
                           timeout=120)
            wait_for(lambda: q.stats("emails").done == JOBS, timeout=600, interval=0.5,
                     message="the rest to drain")
            done = [j for j in q.list_jobs("emails", limit=JOBS) if j.id in ids]
            assert len(done) == JOBS
        finally:
            system.shutdown()
    report("graceful-stop", in_hand=in_hand, stop_seconds=round(seconds, 1),
           stopwaitsecs=STOPWAITSECS)
