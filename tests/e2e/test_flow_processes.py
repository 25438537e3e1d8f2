"""Flow control across real processes: 4 consumer processes (consumer.py) x concurrency 4.

Each handler records the job's start and end (tests/e2e/flow_handlers.py, a file per
process); the limits must hold over those records, however the 16 job threads interleave:
never more than ``concurrency`` jobs running, one job of a group at a time and in enqueue
order, no more claims in a window than the rate allows, small groups served while a big one
has work, and a killed consumer's slot back when its lease ends. Each on both backends.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import JobState, Queue
from tests.e2e.flow_handlers import records
from tests.e2e.handlers import started
from tests.support import ROOT, wait_for

pytestmark = pytest.mark.e2e

PROCESSES = 4
CONCURRENCY = 4


def consumer(db: Path | str, queue: str, env: dict[str, str], tmp_path: Path, name: str,
             handler: str = "tests.e2e.flow_handlers:record") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "consumer.py"), "--db", str(db), "--queue", queue,
         "--handler", handler, "--concurrency", str(CONCURRENCY), "--wait", "0.5",
         "--durability", "normal", "--log-format", "text",
         "--log-dir", str(tmp_path / "logs" / name)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@contextmanager
def fleet(q: Queue, queue: str, env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    """``PROCESSES`` consumers of ``queue``, running (signal handlers in place) when this
    yields the folder their handlers record jobs in, stopped warm (SIGTERM) at the end."""
    folder = tmp_path / "records"
    folder.mkdir()
    env = {**env, "PQ_FLOW_DIR": str(folder)}
    procs = [consumer(q.db, queue, env, tmp_path, f"c{n}") for n in range(PROCESSES)]
    try:
        pids = {proc.pid for proc in procs}
        until(lambda: pids <= {w.pid for w in q.workers() if w.state == "running"}
              or any(proc.poll() is not None for proc in procs), "the consumers to start")
        yield folder
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                _, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            assert proc.returncode == 0, err[-2000:]


def until(condition: Callable[[], Any], message: str, timeout: float = 90) -> None:
    wait_for(condition, timeout=timeout, interval=0.05, message=message)


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an end before a start at the same time)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda event: (event[0], event[1]))
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_never_more_than_concurrency_jobs_run_at_once(
        db_path: Path | str, tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    with Queue(db_path, durability="normal") as q:
        q.create_queue("limited", concurrency=3)
        q.enqueue_many("limited", [{"n": n, "sleep": 0.05} for n in range(60)])
        with fleet(q, "limited", subprocess_env, tmp_path) as folder:
            until(lambda: len(records(folder)) == 60, "60 jobs to run")
        done = records(folder)
        assert sorted(r["n"] for r in done) == list(range(60))  # each exactly once
        assert most_at_once([(r["start"], r["end"]) for r in done]) == 3  # reached, never more
        assert len({r["pid"] for r in done}) > 1
        assert q.stats("limited").done == 60


def test_an_ordered_group_runs_one_job_at_a_time_in_enqueue_order(
        db_path: Path | str, tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    with Queue(db_path, durability="normal") as q:
        q.create_queue("ordered", group_concurrency=1)
        for n in range(8):
            for group in ("a", "b", "c", "d", "e", "f"):
                q.enqueue("ordered", {"n": n, "sleep": 0.02}, group_key=group)
        with fleet(q, "ordered", subprocess_env, tmp_path) as folder:
            until(lambda: len(records(folder)) == 48, "48 jobs to run")
    by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records(folder):
        by_group[r["group"]].append(r)
    for group, jobs in by_group.items():
        jobs.sort(key=lambda r: r["start"])
        assert [r["n"] for r in jobs] == list(range(8)), group  # enqueue order
        assert most_at_once([(r["start"], r["end"]) for r in jobs]) == 1, group
    everything = [(r["start"], r["end"]) for r in records(folder)]
    assert most_at_once(everything) > 1  # the groups ran side by side


def test_a_rate_limit_holds_across_processes_with_its_documented_burst(
        db_path: Path | str, tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    with Queue(db_path, durability="normal") as q:
        info = q.create_queue("paced", rate_limit="10/s", visibility_timeout=60)
        q.enqueue_many("paced", [{"n": n} for n in range(60)])
        with fleet(q, "paced", subprocess_env, tmp_path) as folder:
            until(lambda: len(records(folder)) == 60, "60 jobs to run")
    # The claim's own clock reading: the lease ends a visibility timeout after it.
    claims = sorted(r["lease_end"] - info.visibility_timeout for r in records(folder))
    for first in claims:  # any 5 s window: at most 50 plus the burst of 10
        assert sum(first <= t < first + 5 for t in claims) <= 60
    # 60 claims at 10/s after a burst of 10 need 5 s; none came early.
    assert claims[-1] - claims[0] >= 5.0 - 1e-3
    assert claims[10] - claims[0] >= 0.1 - 1e-3


def test_claims_rotate_over_groups_so_small_groups_finish_early(
        db_path: Path | str, tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    with Queue(db_path, durability="normal") as q:
        # A group concurrency above the fleet's 16 slots: only the rotation holds the big group.
        q.create_queue("fair", group_concurrency=64)
        q.enqueue_many("fair", [{"n": n} for n in range(10_000)], group_key="big")
        for group in range(10):
            q.enqueue_many("fair", [{"n": n} for n in range(10)], group_key=f"small-{group}")
        with fleet(q, "fair", subprocess_env, tmp_path) as folder:
            until(lambda: sum(r["group"] != "big" for r in records(folder)) == 100,
                  "every small group's jobs to run")
    done = records(folder)
    last_small = max(r["end"] for r in done if r["group"] != "big")
    big_before = sum(r["group"] == "big" and r["end"] <= last_small for r in done)
    print(f"big group's jobs done when the last small group finished: {big_before}")
    assert big_before < 1_000  # 10 % of the big group


def test_a_killed_consumers_slot_returns_when_its_lease_ends(
        db_path: Path | str, tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    with Queue(db_path, durability="normal") as q:
        q.create_queue("single", concurrency=1, visibility_timeout=2)
        # The killed consumer's handler sleeps "seconds"; the fleet's record its run at once.
        first = q.enqueue("single", {"n": 0, "seconds": 300})
        q.enqueue("single", {"n": 1})
        folder = tmp_path / "started"
        folder.mkdir()
        doomed = consumer(db_path, "single", {**subprocess_env, "PQ_STARTED_DIR": str(folder)},
                          tmp_path, "doomed", handler="tests.e2e.handlers:announce_then_sleep")
        try:
            until(lambda: started(folder, first.id), "the first job to start")
            with fleet(q, "single", subprocess_env, tmp_path) as records_dir:
                until(lambda: q.stats("single").throttled >= 1, "the fleet to be held back")
                doomed.send_signal(signal.SIGKILL)
                doomed.wait(30)
                lease_end = q.get_job(first.id).lease_expires_at
                assert lease_end is not None
                until(lambda: len(records(records_dir)) == 2, "the slot to come back")
            again = next(r for r in records(records_dir) if r["id"] == first.id)
            claimed_at = again["lease_end"] - 2
            assert claimed_at >= lease_end  # not one moment before the dead lease ended
            assert claimed_at - lease_end < 5  # woken when it ended, not much later
        finally:
            if doomed.poll() is None:
                doomed.kill()
                doomed.wait()
        assert q.get_job(first.id).state is JobState.DONE
