"""Flow control on each backend: concurrency and rate limits, ordered and fair groups.

The clock is fake (``queue`` fixture): leases expire and rate windows open only when a test
moves it. The same rules hold across processes (tests/e2e/test_flow_processes.py).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from persistent_queue import InvalidArgument, Job, JobState, Queue
from persistent_queue.flow import Rate
from tests.support import FakeClock


def ids(jobs: list[Job]) -> list[int]:
    return [job.id for job in jobs]


def payloads(jobs: list[Job]) -> list[object]:
    return [job.payload for job in jobs]


# -- settings ----------------------------------------------------------------------------------


def test_limits_are_queue_settings_shown_with_the_queue(queue: Queue) -> None:
    info = queue.create_queue("webhooks", concurrency=10, rate_limit="50/s",
                              group_concurrency=1, group_rate_limit="5/s")
    assert (info.concurrency, info.rate_limit, info.group_concurrency,
            info.group_rate_limit) == (10, "50/s", 1, "5/s")
    assert queue.get_queue("webhooks") == info
    plain = queue.create_queue("plain")
    assert (plain.concurrency, plain.rate_limit, plain.group_concurrency,
            plain.group_rate_limit) == (None, None, None, None)


@pytest.mark.parametrize(("given", "shown", "count", "period"), [
    ("50/s", "50/s", 50, 1.0), ("100/m", "100/m", 100, 60.0), ("1000/h", "1000/h", 1000, 3600.0),
    ("3/10s", "3/10s", 3, 10.0), (" 5 / 2m ", "5/2m", 5, 120.0), ("1/90s", "1/90s", 1, 90.0),
    ("2/0.5s", "2/0.5s", 2, 0.5), ("7/120m", "7/2h", 7, 7200.0),
])
def test_rate_limits_read_a_count_per_period(given: str, shown: str, count: int,
                                             period: float) -> None:
    rate = Rate.parse(given)
    assert (rate.count, rate.period, str(rate)) == (count, period, shown)


@pytest.mark.parametrize("bad", ["50", "50/", "/s", "x/s", "0/s", "50/0s", "50/d", "50/2d",
                                 "-1/s", "1e3/s", "50/s/s", "", 50, 1.5, True, ["50/s"],
                                 "2000000/s", "1/25h"])
def test_a_malformed_rate_limit_is_invalid_argument_naming_the_setting(
        queue: Queue, bad: object) -> None:
    with pytest.raises(InvalidArgument, match="rate_limit"):
        queue.create_queue("q", rate_limit=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="group_rate_limit"):
        queue.create_queue("q", group_rate_limit=bad)  # type: ignore[arg-type]
    assert queue.list_queues() == []


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "3", 10**7])
def test_a_concurrency_limit_is_a_positive_integer(queue: Queue, bad: object) -> None:
    for setting in ("concurrency", "group_concurrency"):
        with pytest.raises(InvalidArgument, match=setting):
            queue.create_queue("q", **{setting: bad})  # type: ignore[arg-type]
    queue.create_queue("q")
    with pytest.raises(InvalidArgument, match="concurrency"):
        queue.update_queue("q", concurrency=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "a\nb", "x" * 257, 5, b"bytes"])
def test_a_group_key_is_printable_text(queue: Queue, bad: object) -> None:
    with pytest.raises(InvalidArgument, match="group_key"):
        queue.enqueue("q", 1, group_key=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="group_key"):
        queue.enqueue_many("q", [1, 2], group_key=bad)  # type: ignore[arg-type]
    assert queue.list_jobs() == []


def test_update_queue_changes_given_limits_and_none_removes_one(queue: Queue) -> None:
    queue.create_queue("q", concurrency=2, rate_limit="5/s")
    info = queue.update_queue("q", rate_limit="10/m", group_concurrency=3)
    assert (info.concurrency, info.rate_limit, info.group_concurrency) == (2, "10/m", 3)
    info = queue.update_queue("q", concurrency=None, rate_limit=None, group_concurrency=None)
    assert (info.concurrency, info.rate_limit, info.group_concurrency) == (None, None, None)
    for _ in range(5):
        queue.enqueue("q", 0)
    assert len(queue.dequeue_many("q", 5)) == 5  # no limit left


# -- concurrency -------------------------------------------------------------------------------


def test_concurrency_caps_leased_jobs_across_claims(queue: Queue) -> None:
    queue.create_queue("q", concurrency=3)
    queue.enqueue_many("q", list(range(10)))
    assert payloads(queue.dequeue_many("q", 2)) == [0, 1]
    assert payloads(queue.dequeue_many("q", 5)) == [2]
    assert queue.dequeue("q") is None
    stats = queue.stats("q")
    assert (stats.leased, stats.ready, stats.held, stats.throttled) == (3, 7, 7, 2)


def test_an_ack_nack_or_requeue_frees_a_slot(queue: Queue) -> None:
    queue.create_queue("q", concurrency=2)
    queue.enqueue_many("q", list(range(10)))
    first, second = queue.dequeue_many("q", 5)
    queue.ack(first)
    third = queue.dequeue("q")
    assert third is not None and queue.dequeue("q") is None
    queue.nack(second, "boom", delay=60)
    fourth = queue.dequeue("q")
    assert fourth is not None and queue.dequeue("q") is None
    queue.requeue(third)
    assert queue.dequeue("q") is not None and queue.dequeue("q") is None


def test_an_expired_lease_frees_its_slot_and_an_extended_one_keeps_it(
        queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("q", concurrency=2, visibility_timeout=10)
    queue.enqueue_many("q", list(range(10)))
    kept, lost = queue.dequeue_many("q", 2)
    clock.advance(8)
    queue.extend(kept, 20)
    assert queue.dequeue("q") is None  # both still live
    clock.advance(3)  # `lost` expired, `kept` lives until 28
    again = queue.dequeue_many("q", 5)
    assert ids(again) == [lost.id]  # the expired lease is claimed again, in its slot
    assert queue.dequeue("q") is None


def test_a_paused_limited_queue_claims_nothing(queue: Queue) -> None:
    queue.create_queue("q", concurrency=5)
    queue.enqueue("q", 1)
    queue.pause("q")
    assert queue.dequeue("q") is None
    queue.resume("q")
    assert queue.dequeue("q") is not None


def test_a_limited_claim_leases_exactly_as_the_plain_claim(queue: Queue) -> None:
    queue.create_queue("plain", max_attempts=4, visibility_timeout=7)
    queue.create_queue("limited", max_attempts=4, visibility_timeout=7, concurrency=5)
    for name in ("plain", "limited"):
        queue.enqueue(name, {"n": 1}, priority=3, headers={"h": 1}, max_attempts=2)
        queue.enqueue(name, {"n": 2})
    plain = queue.dequeue_many("plain", 2, visibility_timeout=9)
    limited = queue.dequeue_many("limited", 2, visibility_timeout=9)
    for a, b in zip(plain, limited, strict=True):
        assert a.lease_token and b.lease_token and a.lease_token != b.lease_token
        differs = {"id", "queue", "lease_token"}
        assert {k: v for k, v in a.to_dict().items() if k not in differs} == \
               {k: v for k, v in b.to_dict().items() if k not in differs}
        assert queue.get_job(b.id).state is JobState.LEASED


# -- rate --------------------------------------------------------------------------------------


def test_a_rate_limit_lets_a_burst_go_then_spaces_claims(queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("q", rate_limit="5/s")
    queue.enqueue_many("q", list(range(20)))
    assert len(queue.dequeue_many("q", 10)) == 5  # the burst
    assert queue.dequeue("q") is None
    clock.advance(0.1)
    assert queue.dequeue("q") is None
    clock.advance(0.1)  # one interval (0.2 s) after the burst
    assert len(queue.dequeue_many("q", 10)) == 1
    clock.advance(0.6)
    assert len(queue.dequeue_many("q", 10)) == 3
    clock.advance(10)  # at rest: a full burst again, never more
    assert len(queue.dequeue_many("q", 10)) == 5


def test_a_rate_limit_bounds_claims_in_every_window(queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("q", rate_limit="10/s")
    queue.enqueue_many("q", list(range(200)))
    times: list[float] = []
    for _ in range(500):  # a consumer polling every 10 ms for 5 s
        times += [clock.now] * len(queue.dequeue_many("q", 3))
        clock.advance(0.01)
    for start in times:
        assert sum(start <= t < start + 5 for t in times) <= 50 + 10
    assert len(times) >= 55


def test_an_outlook_names_when_the_rate_next_lets_a_claim_go(
        queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("q", rate_limit="2/s")
    queue.enqueue_many("q", list(range(5)))
    assert len(queue.dequeue_many("q", 5)) == 2
    claimable, wake_at = queue.backend.flow_outlook("q", clock.now)  # type: ignore[misc]
    assert not claimable and wake_at == pytest.approx(clock.now + 0.5)
    clock.advance(0.5)
    assert queue.backend.flow_outlook("q", clock.now) == (True, None)


def test_a_changed_rate_limit_starts_afresh(queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("q", rate_limit="1/h")
    queue.enqueue_many("q", list(range(10)))
    assert len(queue.dequeue_many("q", 10)) == 1
    assert queue.dequeue("q") is None
    queue.update_queue("q", rate_limit="3/h")
    assert len(queue.dequeue_many("q", 10)) == 3


def test_concurrency_and_rate_together(queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("q", concurrency=2, rate_limit="3/s")
    queue.enqueue_many("q", list(range(10)))
    first = queue.dequeue_many("q", 10)
    assert len(first) == 2
    queue.ack_many(first)
    assert len(queue.dequeue_many("q", 10)) == 1  # the burst of 3 is spent
    clock.advance(1)
    assert len(queue.dequeue_many("q", 10)) == 1  # one slot free


# -- ordered groups ----------------------------------------------------------------------------


def test_group_concurrency_one_runs_each_group_in_order_one_at_a_time(queue: Queue) -> None:
    queue.create_queue("q", group_concurrency=1)
    for n in range(3):
        for group in "ab":
            queue.enqueue("q", f"{group}{n}", group_key=group)
    first = queue.dequeue_many("q", 10)
    assert sorted(payloads(first)) == ["a0", "b0"]
    assert [job.group_key for job in first] == [job.payload[0] for job in first]
    assert queue.dequeue("q") is None
    a0 = next(job for job in first if job.payload == "a0")
    queue.ack(a0)
    assert payloads(queue.dequeue_many("q", 10)) == ["a1"]


def test_a_failed_job_holds_its_group_until_it_is_retried(queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("q", group_concurrency=1, max_attempts=3)
    queue.enqueue_many("q", ["x1", "x2"], group_key="x")
    x1 = queue.dequeue("q")
    assert x1 is not None
    queue.nack(x1, "boom", delay=30)
    assert queue.dequeue("q") is None  # x2 waits for x1's retry
    outlook = queue.backend.flow_outlook("q", clock.now)
    assert outlook is not None and outlook[1] == pytest.approx(clock.now + 30)
    clock.advance(30)
    again = queue.dequeue("q")
    assert again is not None and again.payload == "x1" and again.attempts == 2


def test_a_dead_lettered_job_lets_its_group_move_on_and_a_redrive_returns_it_to_its_place(
        queue: Queue) -> None:
    queue.create_queue("q", group_concurrency=1, max_attempts=1)
    queue.enqueue_many("q", ["x1", "x2", "x3"], group_key="x")
    x1 = queue.dequeue("q")
    assert x1 is not None
    letter = queue.nack(x1, "boom")
    assert letter.group_key == "x"  # type: ignore[union-attr]
    x2 = queue.dequeue("q")
    assert x2 is not None and x2.payload == "x2"
    queue.redrive(x1.id)
    queue.ack(x2)
    back = queue.dequeue("q")  # its old place: before x3
    assert back is not None and back.payload == "x1" and back.group_key == "x"
    assert queue.dequeue("q") is None


def test_group_concurrency_lets_the_first_k_of_a_group_run(queue: Queue) -> None:
    queue.create_queue("q", group_concurrency=2)
    queue.enqueue_many("q", ["g1", "g2", "g3", "g4"], group_key="g")
    running = queue.dequeue_many("q", 10)
    assert payloads(running) == ["g1", "g2"]
    queue.ack(running[1])
    assert payloads(queue.dequeue_many("q", 10)) == ["g3"]


def test_a_delayed_first_job_holds_its_group(queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("q", group_concurrency=1)
    queue.enqueue("q", "later", group_key="g", delay=10)
    queue.enqueue("q", "now", group_key="g")
    assert queue.dequeue("q") is None
    clock.advance(10)
    assert payloads(queue.dequeue_many("q", 5)) == ["later"]


def test_group_rate_limit_applies_per_group(queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("q", group_rate_limit="2/s")
    for group in "ab":
        queue.enqueue_many("q", [f"{group}{n}" for n in range(5)], group_key=group)
    got = payloads(queue.dequeue_many("q", 10))
    assert sorted(got) == ["a0", "a1", "b0", "b1"]
    assert queue.dequeue("q") is None
    clock.advance(0.5)
    assert sorted(payloads(queue.dequeue_many("q", 10))) == ["a2", "b2"]


def test_claims_rotate_over_groups_so_a_big_group_starves_no_small_one(queue: Queue) -> None:
    queue.create_queue("q", group_concurrency=100)
    queue.enqueue_many("q", [f"big{n}" for n in range(50)], group_key="big")
    for group in ("s1", "s2"):
        queue.enqueue_many("q", [f"{group}-{n}" for n in range(2)], group_key=group)
    order = [job.payload for job in iter(lambda: queue.dequeue("q"), None)][:8]
    assert order[:6] == ["big0", "s1-0", "s2-0", "big1", "s1-1", "s2-1"]
    assert order[6:] == ["big2", "big3"]


def test_priority_orders_across_groups(queue: Queue) -> None:
    queue.create_queue("q", group_concurrency=5)
    queue.enqueue("q", "low", group_key="a")
    queue.enqueue("q", "high", group_key="b", priority=5)
    assert payloads(queue.dequeue_many("q", 2)) == ["high", "low"]


def test_a_batch_claim_takes_one_job_per_group_per_turn(queue: Queue) -> None:
    queue.create_queue("q", group_concurrency=10)
    queue.enqueue_many("q", ["a1", "a2", "a3"], group_key="a")
    queue.enqueue_many("q", ["b1"], group_key="b")
    assert payloads(queue.dequeue_many("q", 3)) == ["a1", "a2", "b1"]  # a1, b1, a2 (by id)


def test_jobs_without_a_group_are_held_by_no_group_limit(queue: Queue) -> None:
    queue.create_queue("q", group_concurrency=1, concurrency=3)
    queue.enqueue_many("q", ["n1", "n2", "n3", "n4"])
    queue.enqueue("q", "g1", group_key="g")
    got = payloads(queue.dequeue_many("q", 10))
    assert sorted(got) == ["g1", "n1", "n2"]  # the queue's limit of 3 still holds
    assert all(job.group_key is None for job in queue.list_jobs() if job.payload[0] == "n")


def test_a_queue_that_gains_group_limits_keeps_its_backlog_claimable(queue: Queue) -> None:
    queue.create_queue("q")
    queue.enqueue_many("q", ["n1", "n2"])
    queue.enqueue("q", "g1", group_key="g")
    queue.enqueue("q", "g2", group_key="g")
    queue.update_queue("q", group_concurrency=1)
    queue.enqueue("q", "n3")  # after the change: in the group of jobs without a key
    assert payloads(queue.dequeue_many("q", 10)) == ["n1", "n2", "g1", "n3"]  # by id
    queue.update_queue("q", group_concurrency=None)
    assert payloads(queue.dequeue_many("q", 10)) == ["g2"]


def test_a_grouped_batch_and_a_task_option_store_the_group(queue: Queue) -> None:
    queue.create_queue("q", group_concurrency=1)
    stored = queue.enqueue_many("q", [1, 2], group_key="c-42")
    assert [job.group_key for job in stored] == ["c-42", "c-42"]

    @queue.task(queue="q")
    def send(n: int) -> int:
        return n

    handle = send.options(group_key="c-42").delay(3)
    assert handle.job.group_key == "c-42"
    assert queue.get_job(handle.job.id).group_key == "c-42"
    assert payloads(queue.dequeue_many("q", 5)) == [1]


def test_a_released_dependent_joins_its_group_in_order(queue: Queue) -> None:
    queue.create_queue("q", group_concurrency=1)
    parent = queue.enqueue("other", "p")
    child = queue.enqueue("q", "child", group_key="g", depends_on=[parent])
    queue.enqueue("q", "next", group_key="g")
    assert payloads(queue.dequeue_many("q", 5)) == ["next"]
    p = queue.dequeue("other")
    assert p is not None
    queue.ack(p)
    assert queue.get_job(child.id).state is JobState.READY
    assert queue.dequeue("q") is None  # "next" still runs; the group waits for it


def test_stats_count_held_jobs_and_throttled_claims(queue: Queue) -> None:
    queue.create_queue("q", group_concurrency=1)
    queue.enqueue_many("q", [1, 2, 3], group_key="a")
    queue.enqueue("q", 4, group_key="b")
    assert len(queue.dequeue_many("q", 4)) == 2
    stats = queue.stats("q")
    assert (stats.ready, stats.leased, stats.held, stats.throttled) == (2, 2, 2, 1)
    queue.enqueue("plain", 1)
    assert (queue.stats("plain").held, queue.stats("plain").throttled) == (0, 0)


def test_cleanup_forgets_groups_that_went_quiet_and_delete_forgets_them_all(
        queue: Queue, clock: FakeClock) -> None:
    queue.create_queue("q", group_rate_limit="1/s")
    queue.enqueue("q", 1, group_key="a")
    queue.enqueue("q", 2, group_key="b")
    for job in queue.dequeue_many("q", 5):
        queue.ack(job)
    rows = "SELECT count(*) AS n FROM flow_groups"
    assert queue.backend.execute_read(rows)[0][0] == 2  # type: ignore[attr-defined]
    clock.advance(3600)
    queue.enqueue("q", 3, group_key="b")
    queue.cleanup(older_than=60)
    assert queue.backend.execute_read(rows)[0][0] == 1  # type: ignore[attr-defined]
    queue.delete_queue("q", force=True)
    assert queue.backend.execute_read(rows)[0][0] == 0  # type: ignore[attr-defined]


# -- waiting -----------------------------------------------------------------------------------


def test_a_consumer_held_back_waits_without_claiming_and_wakes_on_an_ack(
        db_path: Path | str) -> None:
    q = Queue(db_path, durability="normal")
    other = Queue(db_path, durability="normal")
    try:
        q.create_queue("q", concurrency=1)
        q.enqueue_many("q", [1, 2])
        held = q.dequeue("q")
        assert held is not None
        got: list[Job | None] = []
        waiter = threading.Thread(target=lambda: got.append(other.dequeue("q", wait=20)))
        waiter.start()
        deadline = time.monotonic() + 10
        while other.stats("q").throttled < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # the waiter sleeps: its limits hold the job back
        acked_at = time.monotonic()
        q.ack(held)
        waiter.join(15)
        assert got and got[0] is not None and got[0].payload == 2
        assert time.monotonic() - acked_at < 0.9  # woken by the ack, not by a recheck
        assert other.stats("q").throttled == 1  # one claim held back, then no claim in vain
    finally:
        q.close()
        other.close()


def test_a_worker_of_several_queues_waits_on_a_limited_one_without_claiming(
        db_path: Path | str) -> None:
    from persistent_queue.worker_claims import claim

    q = Queue(db_path, durability="normal")
    busy = Queue(db_path, durability="normal")
    try:
        q.create_queue("limited", concurrency=1)
        q.enqueue_many("limited", [1, 2])
        held = q.dequeue("limited")
        assert held is not None
        stop = threading.Event()

        def commits() -> None:  # another queue's traffic: commits that wake every waiter
            while not stop.is_set():
                busy.enqueue("elsewhere", 0)

        writer = threading.Thread(target=commits)
        writer.start()
        try:
            assert claim(q, ["limited", "empty"], 1, wait=1.0, visibility_timeout=None) == []
        finally:
            stop.set()
            writer.join()
        assert busy.stats("elsewhere").ready > 10  # it was woken, many times
        assert q.stats("limited").throttled <= 1  # and claimed in vain once at most
    finally:
        q.close()
        busy.close()


def test_a_job_stored_while_its_queue_gains_group_limits_joins_the_groups(
        db_path: Path | str) -> None:
    """An enqueue that read the queue's settings before group limits were set, and commits
    after: the change waits for it, and the job is still claimable (never outside the groups,
    where no grouped claim would find it)."""
    producer = Queue(db_path, durability="normal")
    operator = Queue(db_path, durability="normal")
    try:
        producer.create_queue("q")
        changed = threading.Event()
        with producer.atomic():
            late = producer.enqueue("q", "late")  # stored, not committed
            changer = threading.Thread(target=lambda: (
                operator.update_queue("q", group_concurrency=1), changed.set()))
            changer.start()
            deadline = time.monotonic() + 0.5  # the change must wait for this transaction
            while time.monotonic() < deadline:
                assert not changed.is_set()
                time.sleep(0.01)
        changer.join(30)
        assert changed.is_set()
        claimed = operator.dequeue("q")
        assert claimed is not None and claimed.id == late.id
    finally:
        producer.close()
        operator.close()
