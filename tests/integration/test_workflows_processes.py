"""Workflows under real concurrency: several OS processes on one database file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.support import wait_for

START_TOGETHER = """
import os, sys, time
go = sys.argv[2]
deadline = time.monotonic() + 120
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("never told to start")
    time.sleep(0.005)
"""


def _spawn(code: str, db: Path, go: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    script = START_TOGETHER + textwrap.dedent(code)
    return subprocess.Popen([sys.executable, "-c", script, str(db), str(go)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(procs: list[subprocess.Popen[str]]) -> list[str]:
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        outputs.append(out)
    return outputs


def test_two_producers_with_the_same_dedup_keys_get_one_job_each(
    db_path: Path, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    Queue(db_path).close()  # create the schema before the race
    go = tmp_path / "go"
    code = """
        import json
        from persistent_queue import Queue
        q = Queue(sys.argv[1], durability="normal")
        out = {}
        for n in range(150):
            job = q.enqueue("orders", {"n": n, "pid": os.getpid()}, dedup_key=f"order-{n}")
            out[n] = [job.id, job.deduplicated]
        print(json.dumps(out))
    """
    procs = [_spawn(code, db_path, go, subprocess_env) for _ in range(2)]
    go.touch()
    first, second = (json.loads(out) for out in _finish(procs))
    for n in first:
        assert first[n][0] == second[n][0], f"key order-{n} produced two jobs"
        assert sorted([first[n][1], second[n][1]]) == [False, True]
    with Queue(db_path) as q:
        assert q.stats("orders").ready == 150
        assert q.stats("orders").dedup_hits == 150


def test_two_schedulers_fire_each_tick_exactly_once(
    db_path: Path, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    start, every, ticks = 1_000_000.0, 10.0, 60
    with Queue(db_path) as q:
        q.schedule("reports", {"kind": "hourly"}, every=every, start_at=start)
    go = tmp_path / "go"
    # Both processes walk the same (explicit) clock, several passes per tick, racing.
    code = f"""
        from persistent_queue import Queue
        q = Queue(sys.argv[1], durability="normal")
        fired = 0
        for step in range({ticks} * 4):
            fired += len(q.run_due_schedules(now={start} + step * {every} / 4))
        print(fired)
    """
    procs = [_spawn(code, db_path, go, subprocess_env) for _ in range(2)]
    go.touch()
    counts = [int(out) for out in _finish(procs)]
    with Queue(db_path) as q:
        jobs = q.list_jobs("reports", limit=1000, newest_first=False)
        info = q.get_schedule("reports")
    assert sum(counts) == len(jobs) == ticks
    assert [job.headers["scheduled_for"] for job in jobs] == [
        start + k * every for k in range(ticks)]
    assert info.runs == ticks and info.missed == 0


def _scheduler(db: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "persistent_queue.scheduler", "--db", str(db),
         "--interval", "0.2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_scheduler_processes_share_ticks_and_stop_on_sigterm(
    db_path: Path, subprocess_env: dict[str, str]
) -> None:
    with Queue(db_path) as q:
        q.schedule("beat", 1, every=0.25)
        procs = [_scheduler(db_path, subprocess_env) for _ in range(2)]
        try:
            wait_for(lambda: "beat" in q.stats() and q.stats("beat").ready >= 8,
                     timeout=120, message="eight ticks fired")
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            assert "scheduler stopped" in out  # its log: JSON lines on stdout
        jobs = q.list_jobs("beat", limit=10_000)
        stamps = [job.headers["scheduled_for"] for job in jobs]
        assert len(stamps) == len(set(stamps)), "a tick was fired twice"
        info = q.get_schedule("beat")
        assert info.runs == len(jobs)
        schedulers = [w for w in q.workers() if w.kind == "scheduler"]
        assert [w.state for w in schedulers] == ["stopped", "stopped"]
        assert sum(w.processed for w in schedulers) == len(jobs)


def test_scheduler_rejects_bad_arguments(subprocess_env: dict[str, str], db_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "persistent_queue.scheduler", "--db", str(db_path),
         "--interval", "0"], env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--interval" in proc.stderr


def test_blocked_producer_process_resumes_when_a_consumer_acks(
    db_path: Path, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    with Queue(db_path) as q:
        q.create_queue("bounded", max_size=2)
        q.enqueue_many("bounded", [0, 1])
        go = tmp_path / "go"
        code = """
            from persistent_queue import Queue
            q = Queue(sys.argv[1], durability="normal")
            for n in range(2, 6):
                q.enqueue("bounded", n, block=True, block_timeout=120)
            print("done")
        """
        proc = _spawn(code, db_path, go, subprocess_env)
        go.touch()
        consumed = []
        while len(consumed) < 6:
            job = q.dequeue("bounded", wait=5)
            if job is None:
                assert proc.poll() is None, proc.communicate()[1]
                continue
            assert q.stats("bounded").ready + q.stats("bounded").leased <= 2
            consumed.append(job.payload)
            q.ack(job)
        assert _finish([proc]) == ["done\n"]
        assert sorted(consumed) == list(range(6))
        assert q.stats("bounded").rejected_full == 0


def test_no_dependent_is_left_waiting_when_acks_race_its_enqueue(
    db_path: Path, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    Queue(db_path).close()
    go = tmp_path / "go"
    rounds = 150
    producer = f"""
        from persistent_queue import Queue
        q = Queue(sys.argv[1], durability="normal")
        for n in range({rounds}):
            parent = q.enqueue("work", n)
            q.enqueue("after", n, depends_on=[parent])
        print("done")
    """
    consumer = f"""
        from persistent_queue import Queue
        q = Queue(sys.argv[1], durability="normal")
        acked = 0
        while acked < {rounds}:
            job = q.dequeue("work", wait=30)
            if job is None:
                sys.exit("no work arrived")
            q.ack(job)
            acked += 1
        print(acked)
    """
    procs = [_spawn(producer, db_path, go, subprocess_env),
             _spawn(consumer, db_path, go, subprocess_env)]
    go.touch()
    assert _finish(procs) == ["done\n", f"{rounds}\n"]
    with Queue(db_path) as q:
        stats = q.stats("after")
        assert (stats.waiting, stats.ready) == (0, rounds)
