"""kill -9 the producer mid-file again and again: every line is published exactly once."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.support import ROOT, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_no_line_lost_or_duplicated_across_kills(real_queue: Queue, db_path: Path,
                                                 subprocess_env: dict[str, str],
                                                 tmp_path: Path) -> None:
    source = tmp_path / "lines.txt"
    total = 6000
    source.write_text("".join(f"line {n}\n" for n in range(total)))
    command = [sys.executable, str(ROOT / "producer.py"), "--db", str(db_path), "--queue",
               "in", "--input", str(source), "--batch", "40", "--format", "text"]
    rng = random.Random(3)
    seen_counts = []
    for _ in range(4):
        before = real_queue.stats("in").ready if real_queue.list_queues() else 0
        proc = subprocess.Popen(command, env=subprocess_env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        target = before + rng.randint(200, 1000)  # kill it somewhere in the middle of a run

        def progressed(proc: subprocess.Popen[bytes] = proc, target: int = target) -> bool:
            return proc.poll() is not None or (bool(real_queue.list_queues())
                                               and real_queue.stats("in").ready >= target)

        wait_for(progressed, timeout=120, interval=0.005,
                 message="the producer to publish some lines")
        proc.kill()
        proc.wait(timeout=60)
        seen_counts.append(real_queue.stats("in").ready)
    done = subprocess.run(command, env=subprocess_env, capture_output=True, timeout=280)
    assert done.returncode == 0
    payloads = []
    offset = 0
    while True:
        page = real_queue.list_jobs("in", limit=5000, offset=offset, newest_first=False)
        payloads += [job.payload for job in page]
        offset += len(page)
        if len(page) < 5000:
            break
    assert payloads == [f"line {n}" for n in range(total)]
    assert seen_counts[0] < total  # the kills really landed mid-file
