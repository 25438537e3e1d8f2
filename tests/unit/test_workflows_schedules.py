"""Recurring schedules: one job per tick, missed ticks coalesced, cron via croniter."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from persistent_queue import InvalidArgument, Queue, ScheduleNotFound
from persistent_queue.scheduler import run_due, run_scheduler
from tests.support import FakeClock, wait_for


def test_interval_schedule_fires_once_per_tick(queue: Queue, clock: FakeClock) -> None:
    info = queue.schedule("reports", {"kind": "daily"}, every=timedelta(minutes=1),
                          headers={"team": "ops"})
    assert info.name == "reports" and info.next_run_at == clock.now + 60
    assert run_due(queue) == []
    clock.advance(60)
    fired = run_due(queue)
    assert len(fired) == 1
    job = fired[0]
    assert job.queue == "reports" and job.payload == {"kind": "daily"}
    assert job.headers == {"team": "ops", "schedule": "reports", "scheduled_for": info.next_run_at}
    assert run_due(queue) == []  # the same tick never fires twice
    clock.advance(60)
    assert len(run_due(queue)) == 1
    after = queue.get_schedule("reports")
    assert after.runs == 2 and after.missed == 0 and after.next_run_at == info.next_run_at + 120


def test_missed_ticks_are_coalesced_into_one_job(queue: Queue, clock: FakeClock) -> None:
    start = clock.now
    queue.schedule("reports", 1, every=10)
    clock.advance(10 * 10 + 5)  # ticks at +10 ... +100 all passed while nothing ran
    fired = run_due(queue)
    assert len(fired) == 1
    assert fired[0].headers["scheduled_for"] == start + 10  # the oldest missed tick
    info = queue.get_schedule("reports")
    assert info.missed == 9 and info.runs == 1
    assert info.next_run_at == start + 110  # still on the grid, in the future
    clock.advance(5)
    assert len(run_due(queue)) == 1


def test_cron_schedule_uses_croniter(queue: Queue, clock: FakeClock) -> None:
    clock.now = datetime(2025, 3, 1, 10, 2, 30, tzinfo=UTC).timestamp()
    info = queue.schedule("digest", 1, cron="*/5 * * * *")
    assert info.next_run_at == datetime(2025, 3, 1, 10, 5, tzinfo=UTC).timestamp()
    clock.now = datetime(2025, 3, 1, 10, 21, tzinfo=UTC).timestamp()
    assert len(run_due(queue)) == 1
    after = queue.get_schedule("digest")
    assert after.missed == 3  # 10:10, 10:15, 10:20 folded into the 10:05 job
    assert after.next_run_at == datetime(2025, 3, 1, 10, 25, tzinfo=UTC).timestamp()


def test_cron_in_a_time_zone(queue: Queue, clock: FakeClock) -> None:
    try:
        from zoneinfo import ZoneInfo

        paris = ZoneInfo("Europe/Paris")
    except Exception:  # pragma: no cover - no tz database on this machine
        pytest.skip("no time zone database")
    clock.now = datetime(2025, 1, 15, 12, 0, tzinfo=UTC).timestamp()
    info = queue.schedule("digest", 1, cron="0 9 * * *", timezone="Europe/Paris")
    assert datetime.fromtimestamp(info.next_run_at, paris).hour == 9


def test_redeclaring_unchanged_keeps_the_next_tick(queue: Queue, clock: FakeClock) -> None:
    first = queue.schedule("reports", 1, every=60)
    clock.advance(30)
    again = queue.schedule("reports", 1, every=60)
    assert again.next_run_at == first.next_run_at
    changed = queue.schedule("reports", 2, every=60)
    assert changed.next_run_at == clock.now + 60 and changed.payload == 2


def test_named_schedules_unschedule_and_list(queue: Queue, clock: FakeClock) -> None:
    queue.schedule("reports", 1, every=60, name="hourly-a")
    queue.schedule("reports", 2, every=60, name="hourly-b", start_at=clock.now)
    assert [s.name for s in queue.list_schedules()] == ["hourly-a", "hourly-b"]
    assert [job.payload for job in run_due(queue)] == [2]
    queue.unschedule("hourly-b")
    with pytest.raises(ScheduleNotFound):
        queue.unschedule("hourly-b")
    with pytest.raises(ScheduleNotFound):
        queue.get_schedule("hourly-b")
    clock.advance(3600)
    assert [job.payload for job in run_due(queue)] == [1]


@pytest.mark.parametrize("kwargs, match", [
    ({}, "exactly one"),
    ({"every": 5, "cron": "* * * * *"}, "exactly one"),
    ({"cron": "every day"}, "cron"),
    ({"cron": "61 * * * *"}, "cron"),
    ({"every": 0}, "every"),
    ({"every": 0.001}, "every"),
    ({"every": float("nan")}, "every"),
    ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "time zone"),
])
def test_bad_schedules_are_rejected(queue: Queue, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        queue.schedule("reports", 1, **kwargs)  # type: ignore[arg-type]
    assert queue.list_schedules() == []


def test_full_bounded_queue_defers_the_tick(queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("reports", max_size=1)
    queue.enqueue("reports", "occupant")
    queue.schedule("reports", 1, every=60)
    clock.advance(60)
    assert run_due(queue) == []
    assert queue.stats("reports").rejected_full == 1
    claimed = queue.dequeue("reports")
    assert claimed is not None
    queue.ack(claimed)
    assert len(run_due(queue)) == 1  # the deferred tick fires once room appears


def test_scheduler_loop_fires_and_stops(real_queue: Queue) -> None:
    real_queue.schedule("beat", 1, every=0.05)
    stop = threading.Event()
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(
        run_scheduler(real_queue, stop, interval=0.5)))
    worker.start()
    wait_for(lambda: real_queue.stats().get("beat") and real_queue.stats("beat").ready >= 3,
             message="three scheduled jobs")
    stop.set()
    started = time.monotonic()
    worker.join(30)
    assert not worker.is_alive() and time.monotonic() - started < 10
    ticks = [job.headers["scheduled_for"] for job in real_queue.list_jobs("beat", limit=1000)]
    assert len(ticks) == len(set(ticks)) == result[0]


def test_scheduler_loop_does_not_spin_on_a_full_queue(real_queue: Queue) -> None:
    real_queue.create_queue("reports", max_size=1)
    real_queue.enqueue("reports", "occupant")
    real_queue.schedule("reports", 1, every=60, start_at=real_queue.now() - 1)
    stop = threading.Event()
    worker = threading.Thread(target=run_scheduler, args=(real_queue, stop),
                              kwargs={"interval": 0.2})
    worker.start()
    time.sleep(1.0)  # measuring a rate over a fixed span, not synchronising
    stop.set()
    worker.join(30)
    rejected = real_queue.stats("reports").rejected_full
    assert 1 <= rejected <= 10, f"{rejected} passes in 1 s: the loop spins"
