"""Operators' reads and their housekeeping, on both backends: alert thresholds per queue and
``Queue.alerts()``, ``Queue.running_jobs()``, lost workers and ``Queue.prune_workers()``, and
``retry_pending`` in the stats."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import (
    Alert,
    AsyncQueue,
    InvalidArgument,
    InvalidInput,
    Queue,
    QueueNotFound,
    RunningJob,
)
from persistent_queue.config import ALERT_FAILURE_WINDOW
from tests.support import FakeClock


def kinds(alerts: list[Alert]) -> dict[tuple[str, str], tuple[float, float, bool]]:
    return {(a.queue, a.kind): (a.value, a.threshold, a.firing) for a in alerts}


# -- alerts -----------------------------------------------------------------------------------

def test_each_alert_fires_when_its_value_reaches_its_threshold(
    queue: Queue, clock: FakeClock
) -> None:
    queue.create_queue("q", max_attempts=1, alert_depth=3, alert_oldest_age=timedelta(minutes=1),
                       alert_failure_rate=0.5, alert_dead_letters=2)
    assert queue.alerts() == [Alert("q", "depth", 0.0, 3.0, False),
                              Alert("q", "oldest_age", 0.0, 60.0, False),
                              Alert("q", "failure_rate", 0.0, 0.5, False),
                              Alert("q", "dead_letters", 0.0, 2.0, False)]
    for n in range(4):
        queue.enqueue("q", n)
    queue.enqueue("q", "later", delay=3600)  # scheduled: not ready, not in the depth
    clock.advance(30)
    assert kinds(queue.alerts())[("q", "depth")] == (4.0, 3.0, True)
    assert kinds(queue.alerts())[("q", "oldest_age")] == (30.0, 60.0, False)
    clock.advance(30)
    assert kinds(queue.alerts())[("q", "oldest_age")] == (60.0, 60.0, True)

    for outcome in ("ack", "nack", "nack"):  # 2 of 3 attempts failed, and 2 dead letters
        job = queue.dequeue("q")
        assert job is not None
        queue.ack(job) if outcome == "ack" else queue.nack(job, error="boom")
    found = kinds(queue.alerts())
    rate, threshold, fires = found[("q", "failure_rate")]
    assert abs(rate - 2 / 3) < 1e-9 and (threshold, fires) == (0.5, True)
    assert found[("q", "dead_letters")] == (2.0, 2.0, True)
    assert found[("q", "depth")] == (1.0, 3.0, False)

    clock.advance(ALERT_FAILURE_WINDOW + 1)  # the failures leave the window
    assert kinds(queue.alerts())[("q", "failure_rate")] == (0.0, 0.5, False)


def test_alerts_of_one_queue_and_queues_without_thresholds(queue: Queue) -> None:
    queue.create_queue("plain")
    assert queue.alerts() == [] and queue.alerts("plain") == []
    queue.create_queue("b", alert_dead_letters=1)
    queue.create_queue("a", alert_depth=1)
    queue.create_queue("Z", alert_depth=5)
    queue.enqueue("a", 1)
    # By name as stats sorts them (code points), whatever the database's collation.
    assert [(a.queue, a.kind, a.firing) for a in queue.alerts()] == [
        ("Z", "depth", False), ("a", "depth", True), ("b", "dead_letters", False)]
    assert [a.queue for a in queue.alerts("b")] == ["b"]
    with pytest.raises(QueueNotFound):
        queue.alerts("missing")


def test_update_queue_sets_and_clears_thresholds_one_by_one(queue: Queue) -> None:
    queue.create_queue("q", alert_depth=5, alert_failure_rate=1)
    info = queue.update_queue("q", alert_depth=None, alert_oldest_age=90.5,
                              alert_dead_letters=1)
    assert (info.alert_depth, info.alert_oldest_age, info.alert_failure_rate,
            info.alert_dead_letters) == (None, 90.5, 1.0, 1)
    assert queue.update_queue("q", max_attempts=2).alert_oldest_age == 90.5  # others stay
    assert queue.get_queue("q").to_dict()["alert_failure_rate"] == 1.0
    assert [a.kind for a in queue.alerts("q")] == ["oldest_age", "failure_rate", "dead_letters"]


@pytest.mark.parametrize("bad", [
    {"alert_depth": 0}, {"alert_depth": -3}, {"alert_depth": 1.5}, {"alert_depth": True},
    {"alert_depth": "10"}, {"alert_depth": 2**63}, {"alert_dead_letters": 0},
    {"alert_oldest_age": 0}, {"alert_oldest_age": -1}, {"alert_oldest_age": float("inf")},
    {"alert_oldest_age": "5m"}, {"alert_failure_rate": 0}, {"alert_failure_rate": 1.01},
    {"alert_failure_rate": float("nan")}, {"alert_failure_rate": -0.1},
    {"alert_failure_rate": "0.2"}, {"alert_failure_rate": 10**400},
])
def test_bad_thresholds_are_refused_and_change_nothing(queue: Queue, bad: dict[str, Any]) -> None:
    queue.create_queue("q", alert_depth=7)
    with pytest.raises(InvalidArgument):
        queue.update_queue("q", **bad)
    with pytest.raises(InvalidArgument):
        queue.create_queue("other", **bad)
    assert queue.get_queue("q").alert_depth == 7
    assert [info.name for info in queue.list_queues()] == ["q"]


# -- running jobs -----------------------------------------------------------------------------

def test_running_jobs_are_the_live_leases_longest_running_first(
    queue: Queue, clock: FakeClock
) -> None:
    first = queue.enqueue("a", 1, headers={"task": "resize"})
    second = queue.enqueue("b", 2)
    queue.enqueue("a", "waiting in line")
    assert queue.running_jobs() == []
    one = queue.dequeue("a", worker="w1", visibility_timeout=100)
    clock.advance(5)
    two = queue.dequeue("b", worker="w2", visibility_timeout=10)
    assert one is not None and two is not None and (one.id, two.id) == (first.id, second.id)
    queue.set_progress(one, 0.25, "a quarter")
    clock.advance(2)

    running = queue.running_jobs()
    assert [(r.id, r.queue, r.task, r.worker, r.running_for, r.attempt) for r in running] == [
        (first.id, "a", "resize", "w1", 7.0, 1), (second.id, "b", None, "w2", 2.0, 1)]
    assert (running[0].progress, running[0].progress_message) == (0.25, "a quarter")
    assert running[0].lease_expires_at == one.lease_expires_at
    assert [r.id for r in queue.running_jobs("b")] == [second.id]
    assert [r.id for r in queue.running_jobs(limit=1)] == [first.id]

    queue.cancel(first.id)
    assert queue.running_jobs("a")[0].cancel_requested
    clock.advance(10)  # b's lease ran out: its worker is gone, the job no longer runs
    assert [r.id for r in queue.running_jobs()] == [first.id]
    queue.ack(one)
    assert queue.running_jobs() == []


@pytest.mark.parametrize("bad", [{"limit": 0}, {"limit": 10**9}, {"limit": "5"},
                                 {"queue": "no spaces"}])
def test_running_jobs_refuses_bad_arguments(queue: Queue, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        queue.running_jobs(**bad)


# -- workers ----------------------------------------------------------------------------------

def test_a_silent_running_worker_is_lost_until_it_beats_again(
    queue: Queue, clock: FakeClock
) -> None:
    queue.register_worker("quiet", kind="consumer", queues=["q"])
    queue.register_worker("gone", kind="consumer")
    queue.stop_worker("gone")
    clock.advance(61)
    assert {w.id: w.state for w in queue.workers()} == {"quiet": "lost", "gone": "stopped"}
    assert {w.id: w.state for w in queue.workers(stale_after=120)}["quiet"] == "running"
    queue.heartbeat_worker("quiet", processed=1)  # it was only slow
    assert {w.id: w.state for w in queue.workers()}["quiet"] == "running"
    with pytest.raises(InvalidArgument):
        queue.workers(stale_after=0)


def test_prune_workers_forgets_stopped_and_lost_ones_past_the_retention(
    queue: Queue, clock: FakeClock
) -> None:
    queue.register_worker("old-stopped", kind="consumer")
    queue.stop_worker("old-stopped")
    queue.register_worker("old-lost", kind="consumer")
    queue.register_worker("alive", kind="consumer")
    clock.advance(3600)
    queue.heartbeat_worker("alive")
    queue.register_worker("new-stopped", kind="producer")
    queue.stop_worker("new-stopped")
    assert queue.prune_workers(timedelta(hours=2)) == 0  # none that old
    clock.advance(1800)
    # Retention 1 h: the two old ones go; "alive" (30 min silent) is running, not lost.
    assert queue.prune_workers(3600) == 2
    assert sorted(w.id for w in queue.workers()) == ["alive", "new-stopped"]
    # A retention shorter than the lost threshold keeps a silent worker not yet lost.
    assert queue.prune_workers(60, stale_after=3600) == 1
    assert [w.id for w in queue.workers()] == ["alive"]
    assert queue.prune_workers(0, stale_after=60) == 1
    for bad in ({"older_than": -1}, {"older_than": "7d"}, {"stale_after": 0}):
        with pytest.raises(InvalidArgument):
            queue.prune_workers(**bad)


# -- stats ------------------------------------------------------------------------------------

def test_retry_pending_counts_ready_jobs_waiting_for_a_retry(
    queue: Queue, clock: FakeClock
) -> None:
    queue.create_queue("q", max_attempts=2)
    queue.enqueue("q", "fails once")
    queue.enqueue("q", "fine")
    job = queue.dequeue("q")
    assert job is not None
    queue.nack(job, error="boom", delay=60)
    stats = queue.stats("q")
    assert (stats.retry_pending, stats.retries, stats.scheduled, stats.ready) == (1, 1, 1, 1)
    clock.advance(60)
    assert (queue.stats("q").retry_pending, queue.stats("q").ready) == (1, 2)
    again = queue.dequeue("q")
    assert again is not None and again.id == job.id
    queue.ack(again)
    # The history still holds the failure; nothing waits for a retry any more.
    assert (queue.stats("q").retry_pending, queue.stats("q").retries) == (0, 1)
    assert queue.stats("q").to_dict()["retry_pending"] == 0


@pytest.mark.sqlite_only
def test_reading_the_workers_never_waits_for_the_write_lock(
    db_path: Path, clock: FakeClock
) -> None:
    # Version 8 wrote 'dead' over silent workers on every read, in a write transaction: a
    # console or GET /workers queued behind the writers (and failed past busy_timeout).
    with Queue(db_path, clock=clock, durability="normal", busy_timeout=0.2) as q:
        q.register_worker("quiet", kind="consumer")
        clock.advance(3600)
        with closing(sqlite3.connect(db_path, isolation_level=None)) as writer:
            writer.execute("BEGIN IMMEDIATE")
            assert [w.state for w in q.workers()] == ["lost"]
            writer.execute("ROLLBACK")


def test_an_async_queue_reads_alerts_and_running_jobs(queue: Queue) -> None:
    queue.create_queue("q", alert_depth=1)
    queue.enqueue("q", 1)
    queue.enqueue("q", 2)
    job = queue.dequeue("q", worker="w")
    assert job is not None

    async def read() -> tuple[list[Alert], list[RunningJob]]:
        async with AsyncQueue(queue) as aq:
            return await aq.alerts("q"), await aq.running_jobs(limit=5)

    alerts, running = asyncio.run(read())
    assert [(a.kind, a.firing) for a in alerts] == [("depth", True)]
    assert [(r.id, r.worker) for r in running] == [(job.id, "w")]
