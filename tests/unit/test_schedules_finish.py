"""Schedules that end or break: a cron out of ticks finishes, one broken schedule stops no other,
and a schedule that could never fire is refused when declared."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from persistent_queue import InvalidArgument, Job, Queue
from persistent_queue.scheduler import run_scheduler
from tests.support import FakeClock, in_thread, wait_for

NEW_YEAR_2030 = datetime(2030, 1, 1, tzinfo=UTC).timestamp()
LAST_TICK_2030 = "0 0 1 1 * 0 2030"  # minute hour day month weekday second year: one tick


def test_a_cron_out_of_ticks_fires_its_last_tick_then_finishes(queue: Queue,
                                                              clock: FakeClock) -> None:
    clock.now = NEW_YEAR_2030 - 3600
    info = queue.schedule("greetings", "happy 2030", cron=LAST_TICK_2030, name="new-year")
    assert info.next_run_at == NEW_YEAR_2030 and not info.finished
    queue.schedule("beats", 1, every=60, name="beat")

    clock.now = NEW_YEAR_2030 + 5
    fired = queue.run_due_schedules()

    assert sorted(job.queue for job in fired) == ["beats", "greetings"]
    ended = queue.get_schedule("new-year")
    assert ended.finished and ended.finished_at == clock.now
    assert ended.runs == 1 and ended.next_run_at == NEW_YEAR_2030  # its last tick, fired
    assert ended.to_dict()["finished_at"] == clock.now
    clock.now += 3600
    assert [job.queue for job in queue.run_due_schedules()] == ["beats"]
    assert queue.get_schedule("new-year").runs == 1
    assert queue.backend.next_schedule_at() == queue.get_schedule("beat").next_run_at


def test_missed_ticks_up_to_the_last_one_finish_the_schedule(queue: Queue,
                                                             clock: FakeClock) -> None:
    clock.now = datetime(2029, 12, 31, 22, 59, tzinfo=UTC).timestamp()  # ticks 23:00-23:45
    queue.schedule("q", 1, cron="*/15 23 31 12 * 0 2029", name="last-hour")
    clock.now = NEW_YEAR_2030 + 60  # nothing ran during the last hour of 2029
    assert len(queue.run_due_schedules()) == 1
    ended = queue.get_schedule("last-hour")
    assert ended.finished and ended.runs == 1 and ended.missed == 3


def test_declaring_a_finished_schedule_again_with_a_change_revives_it(
    queue: Queue, clock: FakeClock
) -> None:
    clock.now = NEW_YEAR_2030 - 60
    queue.schedule("q", 1, cron=LAST_TICK_2030, name="s")
    clock.now = NEW_YEAR_2030 + 1
    queue.run_due_schedules()
    assert queue.get_schedule("s").finished
    revived = queue.schedule("q", 1, every=60, name="s")
    assert not revived.finished and revived.next_run_at == clock.now + 60


@pytest.mark.parametrize("cron", [
    "0 0 30 2 *",          # February 30th
    "0 0 1 1 1#5",         # the fifth Monday of the month, on January 1st
    "0 0 1 1 * 0 2020",    # a year in the past
    "0 0 1 1 * 0 2020-2025",
])
def test_a_cron_without_a_tick_to_come_is_refused(queue: Queue, clock: FakeClock,
                                                  cron: str) -> None:
    clock.now = NEW_YEAR_2030
    with pytest.raises(InvalidArgument, match="has no tick after 2030-01-01 00:00:00 UTC"):
        queue.schedule("q", 1, cron=cron)
    assert queue.list_schedules() == []


@pytest.mark.parametrize("zone", ["Europe", "America", "Etc", "x" * 300, "zone.tab", ""])
def test_a_time_zone_that_names_no_zone_is_refused(queue: Queue, zone: str) -> None:
    with pytest.raises(InvalidArgument, match="unknown time zone"):
        queue.schedule("q", 1, cron="0 3 * * *", timezone=zone)


@pytest.mark.sqlite_only
def test_a_schedule_that_cannot_fire_does_not_stop_the_others(
    queue: Queue, clock: FakeClock, db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue.schedule("a", 1, cron="* * * * *", name="a-broken")
    queue.schedule("b", 2, every=60, name="b-healthy")
    with sqlite3.connect(db_path) as conn:  # its zone vanished (tzdata upgraded, say)
        conn.execute("UPDATE schedules SET timezone = 'Gone/Away' WHERE name = 'a-broken'")
    conn.close()
    clock.advance(120)

    assert [job.queue for job in queue.run_due_schedules()] == ["b"]

    assert "schedule 'a-broken' cannot fire" in caplog.text
    assert "unknown time zone 'Gone/Away'" in caplog.text
    broken = queue.get_schedule("a-broken")
    assert broken.runs == 0 and not broken.finished  # kept, retried on the next pass


def test_the_scheduler_loop_outlives_an_unexpected_failure(
    real_queue: Queue, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_queue.schedule("beats", 1, every=0.05)
    fire = real_queue.run_due_schedules
    failures = iter([RuntimeError("a bug in one pass")])

    def flaky(now: float | None = None) -> list[Job]:
        for failure in failures:
            raise failure
        return fire(now)

    monkeypatch.setattr(real_queue, "run_due_schedules", flaky)
    stop = threading.Event()
    thread, outcome = in_thread(lambda: run_scheduler(real_queue, stop, interval=0.05))
    wait_for(lambda: real_queue.get_schedule("beats").runs >= 2 or "error" in outcome,
             timeout=30, message="the loop to fire after the failure")
    stop.set()
    thread.join(timeout=30)
    assert "error" not in outcome and outcome["result"] >= 2
    assert "scheduler pass failed unexpectedly" in caplog.text
