"""Schedules under hostile input, driven through the real processes.

The scheduler as supervisord runs it (``python -m persistent_queue.scheduler``) with a cron that
runs out of ticks beside a healthy schedule; ``api.py`` as a real server answering bad
``POST /schedules`` bodies; ``pq schedules list`` showing a finished schedule.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from persistent_queue import Queue
from tests.support import ROOT, FakeClock, ServedApi, wait_for

pytestmark = pytest.mark.e2e

PQ = ROOT / ".venv" / "bin" / "pq"
if not PQ.exists():  # a virtualenv elsewhere: the script beside this interpreter
    PQ = Path(sys.executable).parent / "pq"


def single_tick_cron(moment: datetime) -> str:
    """A 7-field cron (minute hour day month weekday second year) whose only tick is
    ``moment``: after it, croniter finds no next date."""
    return (f"{moment.minute} {moment.hour} {moment.day} {moment.month} * "
            f"{moment.second} {moment.year}")


def declare_a_schedule_that_runs_out(db: str) -> float:
    """Declare "year-end", whose one tick is a minute ago, as it was declared before it came;
    returns the tick."""
    tick = datetime.fromtimestamp(int(time.time()) - 60, UTC)
    with Queue(db, clock=FakeClock(tick.timestamp() - 60), durability="normal") as past:
        info = past.schedule("reports", {"kind": "last"}, cron=single_tick_cron(tick),
                             name="year-end")
    assert info.next_run_at == tick.timestamp()
    return info.next_run_at


def test_a_cron_out_of_ticks_ends_and_the_scheduler_keeps_firing_the_others(
    db_url: str, real_queue: Queue, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    last_tick = declare_a_schedule_that_runs_out(db_url)
    real_queue.schedule("beats", 1, every=0.2, name="heartbeat")
    log = tmp_path / "scheduler.log"
    with log.open("w") as out:
        scheduler = subprocess.Popen(
            [sys.executable, "-m", "persistent_queue.scheduler", "--db", db_url,
             "--interval", "0.2"],
            env=subprocess_env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        def alive() -> None:
            if scheduler.poll() is not None:
                pytest.fail(f"the scheduler exited with {scheduler.returncode}:\n"
                            f"{log.read_text()}")

        def beats(at_least: int) -> bool:
            alive()
            return real_queue.get_schedule("heartbeat").runs >= at_least

        wait_for(lambda: beats(3), timeout=30, message="the healthy schedule to fire")
        wait_for(lambda: real_queue.get_schedule("year-end").finished, timeout=30,
                 message="year-end to finish")
        runs_then = real_queue.get_schedule("heartbeat").runs
        wait_for(lambda: beats(runs_then + 3), timeout=30,
                 message="the healthy schedule to keep firing")

        ended = real_queue.get_schedule("year-end")
        assert ended.runs == 1 and ended.next_run_at == last_tick
        last_job = real_queue.get_job(ended.last_job_id or 0)
        assert last_job.queue == "reports" and last_job.headers["scheduled_for"] == last_tick
        listed = subprocess.run([str(PQ), "--db", db_url, "schedules", "list"],
                                capture_output=True, text=True, timeout=60, env=subprocess_env)
        assert listed.returncode == 0, listed.stderr
        row = next(line for line in listed.stdout.splitlines() if line.startswith("year-end"))
        assert "finished" in row.split()
    finally:
        scheduler.send_signal(signal.SIGTERM)
        try:
            code = scheduler.wait(timeout=30)
        finally:
            if scheduler.poll() is None:
                scheduler.kill()
    assert code == 0
    assert "Traceback" not in log.read_text()

    # A restart (supervisord's autorestart) does not trip over the finished schedule either.
    restarted = subprocess.run(
        [sys.executable, "-c",
         "import sys; from persistent_queue import Queue; "
         "from persistent_queue.scheduler import run_due; "
         "q = Queue(sys.argv[1]); print(len(run_due(q))); q.close()", db_url],
        env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert restarted.returncode == 0, restarted.stderr
    assert real_queue.get_schedule("year-end").runs == 1


@pytest.fixture
def api_server(db_url: str, tmp_path: Path,
               subprocess_env: dict[str, str]) -> Iterator[tuple[str, ServedApi]]:
    """``api.py`` on a port it binds itself (``--port 0``), read back from its start-up line."""
    env = {k: v for k, v in subprocess_env.items() if not k.startswith("PQ_API_")}
    api = ServedApi([sys.executable, str(ROOT / "api.py"), "--port", "0", "--db", db_url],
                    log=tmp_path / "api.log", cwd=tmp_path, env=env)
    try:
        yield api.wait_listening(timeout=60), api
    finally:
        assert api.stop(timeout=30) == 0


@pytest.mark.parametrize("body, detail", [
    ({"cron": "0 0 30 2 *"}, "cron expression '0 0 30 2 *' has no tick"),
    ({"cron": "0 0 1 1 1#5"}, "cron expression '0 0 1 1 1#5' has no tick"),
    ({"cron": "0 0 1 1 * 0 2020"}, "cron expression '0 0 1 1 * 0 2020' has no tick"),
    ({"cron": "0 3 * * *", "timezone": "Europe"}, "unknown time zone 'Europe'"),
    ({"cron": "0 3 * * *", "timezone": "Etc"}, "unknown time zone 'Etc'"),
], ids=["february-30", "fifth-monday-on-jan-1", "year-in-the-past", "tzdata-folder",
        "another-tzdata-folder"])
def test_post_schedules_refuses_what_can_never_fire_with_422(
    api_server: tuple[str, ServedApi], body: dict[str, str], detail: str
) -> None:
    base, output = api_server
    with httpx.Client(base_url=base, timeout=30) as client:
        answer = client.post("/schedules", json={"name": "s", "queue": "q", "payload": {},
                                                 **body})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == "invalid_input"
        assert detail in answer.json()["detail"]
        assert client.get("/schedules").json() == []
        assert client.get("/healthz").status_code == 200
    assert "Traceback" not in output.text() and " 500 " not in output.text()


def test_the_api_lists_a_finished_schedule_as_finished(
    api_server: tuple[str, ServedApi], db_url: str
) -> None:
    base, output = api_server
    last_tick = declare_a_schedule_that_runs_out(db_url)
    with Queue(db_url, durability="normal") as queue:
        assert len(queue.run_due_schedules()) == 1
    with httpx.Client(base_url=base, timeout=30) as client:
        listed = {s["name"]: s for s in client.get("/schedules").json()}
        one = client.get("/schedules/year-end").json()
    assert listed["year-end"]["finished_at"] is not None
    assert listed["year-end"]["next_run_at"] == last_tick
    assert one["finished_at"] == listed["year-end"]["finished_at"]
    assert "Traceback" not in output.text()
