"""Enqueueing: what a producer is promised when ``enqueue`` returns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from persistent_queue import InvalidPayload, JobState, Queue, config
from tests.support import FakeClock


def test_enqueue_returns_the_stored_job(queue: Queue, clock: FakeClock) -> None:
    job = queue.enqueue("emails", {"to": "a@b.c", "n": [1, 2.5, None, True]}, priority=3)

    assert job.id >= 1
    assert job.queue == "emails"
    assert job.payload == {"to": "a@b.c", "n": [1, 2.5, None, True]}
    assert job.state is JobState.READY
    assert job.priority == 3
    assert job.attempts == 0
    assert job.lease_token is None
    assert job.created_at == job.available_at == clock.now
    assert queue.get_job(job.id) == job


def test_an_enqueued_job_is_visible_to_another_queue_object_on_the_same_file(
    queue: Queue, db_path: Path
) -> None:
    job = queue.enqueue("emails", "hello")

    with Queue(db_path) as other:
        seen = other.get_job(job.id)
        claimed = other.dequeue("emails")

    assert seen.payload == "hello" and seen.state is JobState.READY
    assert claimed is not None and claimed.id == job.id


def test_an_enqueued_job_survives_closing_and_reopening(db_path: Path, clock: FakeClock) -> None:
    with Queue(db_path, clock=clock) as first:
        job = first.enqueue("emails", {"k": 1})
    with Queue(db_path, clock=clock) as second:
        assert second.get_job(job.id).payload == {"k": 1}


def test_ids_increase_in_enqueue_order(queue: Queue) -> None:
    ids = [queue.enqueue("q", n).id for n in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5


def test_enqueue_many_stores_all_jobs_with_consecutive_ids(queue: Queue) -> None:
    jobs = queue.enqueue_many("batch", [{"n": n} for n in range(100)], priority=2)

    assert [job.payload for job in jobs] == [{"n": n} for n in range(100)]
    assert [job.id for job in jobs] == list(range(jobs[0].id, jobs[0].id + 100))
    stored = queue.list_jobs("batch", limit=1000, newest_first=False)
    assert [(job.id, job.payload, job.priority) for job in stored] == [
        (job.id, job.payload, 2) for job in jobs
    ]


def test_enqueue_many_returns_exactly_what_it_stored(queue: Queue, clock: FakeClock) -> None:
    queue.enqueue("batch", "before")  # ids of a batch continue after existing jobs
    payloads = ["text", "caf\u00e9 \U0001f600", 7, 2.5, None, True, [1, "x"], {"k": {"n": 1}}]

    jobs = queue.enqueue_many("batch", payloads, delay=5, max_attempts=3,
                              headers={"tenant": "acme"})

    assert [queue.get_job(job.id) for job in jobs] == jobs
    assert [job.payload for job in jobs] == payloads
    assert {(job.available_at, job.max_attempts, job.state) for job in jobs} == {
        (clock.now + 5, 3, JobState.READY)}
    jobs[0].headers["tenant"] = "changed"  # each job has its own headers dict
    assert jobs[1].headers == {"tenant": "acme"}


def test_enqueue_many_refuses_a_lone_surrogate_and_a_payload_over_the_limit(
    db_path: Path, clock: FakeClock
) -> None:
    with Queue(db_path, clock=clock, max_payload_bytes=100) as q:
        with pytest.raises(InvalidPayload):
            q.enqueue_many("batch", ["ok", "bad \ud800"])
        with pytest.raises(InvalidPayload):  # PayloadTooLarge is an InvalidPayload
            q.enqueue_many("batch", ["ok", "\u00e9" * 60])  # 60 chars, 120 bytes
        assert q.enqueue_many("batch", ["ok", "\u00e9" * 40])[1].payload == "\u00e9" * 40
        assert q.list_jobs("batch", limit=10) != []


def test_enqueue_many_is_one_transaction_a_bad_payload_stores_nothing(queue: Queue) -> None:
    payloads = [{"n": 1}, {"n": 2}, {"bad": float("nan")}, {"n": 4}]

    with pytest.raises(InvalidPayload):
        queue.enqueue_many("batch", payloads)

    assert queue.list_jobs("batch") == []
    assert queue.list_queues() == []  # not even the queue was created


def test_enqueue_many_of_nothing_returns_an_empty_list(queue: Queue) -> None:
    assert queue.enqueue_many("batch", []) == []


def test_enqueue_many_accepts_any_iterable(queue: Queue) -> None:
    jobs = queue.enqueue_many("batch", (n * n for n in range(4)))
    assert [job.payload for job in jobs] == [0, 1, 4, 9]


def test_enqueue_creates_an_unknown_queue_with_the_defaults(db_path: Path) -> None:
    with Queue(db_path, max_attempts=7, visibility_timeout=12.5) as q:
        job = q.enqueue("fresh", 1)
        info = q.get_queue("fresh")

    assert info.max_attempts == 7
    assert info.visibility_timeout == 12.5
    assert info.max_size is None and info.paused is False
    assert job.max_attempts == 7


def test_enqueue_into_an_existing_queue_keeps_its_settings(queue: Queue) -> None:
    queue.create_queue("tuned", max_attempts=2, visibility_timeout=99)
    job = queue.enqueue("tuned", 1)
    assert queue.get_queue("tuned").visibility_timeout == 99
    assert job.max_attempts == 2


def test_the_library_defaults(queue: Queue) -> None:
    queue.enqueue("defaults", 1)
    info = queue.get_queue("defaults")
    assert info.max_attempts == config.DEFAULT_MAX_ATTEMPTS == 5
    assert info.visibility_timeout == config.DEFAULT_VISIBILITY_TIMEOUT == 30.0


def test_a_job_may_set_its_own_max_attempts(queue: Queue) -> None:
    job = queue.enqueue("q", 1, max_attempts=9)
    assert job.max_attempts == 9
    assert queue.get_job(job.id).max_attempts == 9


def test_delay_postpones_the_job(queue: Queue, clock: FakeClock) -> None:
    job = queue.enqueue("later", 1, delay=10)
    assert job.available_at == clock.now + 10

    clock.advance(9.9)
    assert queue.dequeue("later") is None
    clock.advance(0.1)
    claimed = queue.dequeue("later")
    assert claimed is not None and claimed.id == job.id


def test_delay_may_be_a_timedelta(queue: Queue, clock: FakeClock) -> None:
    job = queue.enqueue("later", 1, delay=timedelta(minutes=2))
    assert job.available_at == clock.now + 120


def test_run_at_as_epoch_seconds_or_datetime(queue: Queue, clock: FakeClock) -> None:
    by_number = queue.enqueue("later", 1, run_at=clock.now + 60)
    when = datetime.fromtimestamp(clock.now + 90, tz=UTC)
    by_datetime = queue.enqueue("later", 2, run_at=when)

    assert by_number.available_at == clock.now + 60
    assert by_datetime.available_at == pytest.approx(clock.now + 90)
    clock.advance(60)
    first = queue.dequeue("later")
    assert first is not None and first.id == by_number.id
    queue.ack(first)
    assert queue.dequeue("later") is None
    clock.advance(30)
    second = queue.dequeue("later")
    assert second is not None and second.id == by_datetime.id


def test_run_at_in_the_past_means_now(queue: Queue, clock: FakeClock) -> None:
    job = queue.enqueue("q", 1, run_at=clock.now - 3600)
    assert job.available_at == clock.now
    assert queue.dequeue("q") is not None


def test_delay_and_run_at_together_are_refused(queue: Queue, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="either delay or run_at"):
        queue.enqueue("q", 1, delay=5, run_at=clock.now + 5)
    assert queue.list_jobs() == []


def test_headers_round_trip(queue: Queue) -> None:
    headers = {"trace-id": "abc", "tenant": 42, "ratio": 0.5, "urgent": True, "none": None}
    job = queue.enqueue("q", {"body": 1}, headers=headers)

    assert job.headers == headers
    assert queue.get_job(job.id).headers == headers
    claimed = queue.dequeue("q")
    assert claimed is not None and claimed.headers == headers


def test_jobs_can_be_listed_by_header_value(queue: Queue) -> None:
    a = queue.enqueue("q", 1, headers={"tenant": "a"})
    queue.enqueue("q", 2, headers={"tenant": "b"})
    assert [job.id for job in queue.list_jobs("q", headers={"tenant": "a"})] == [a.id]


def test_no_headers_reads_back_as_an_empty_dict(queue: Queue) -> None:
    job = queue.enqueue("q", 1)
    assert job.headers == {} and queue.get_job(job.id).headers == {}


def test_payloads_of_every_json_type_round_trip(queue: Queue) -> None:
    values = [None, True, False, 0, -(2**63), 2**63 - 1, 1.5, "", "ünïcødé ✓ \U0001f600",
              [], {}, {"nested": {"deep": [1, [2, [3]]]}}, "x" * 10_000]
    ids = [queue.enqueue("types", value).id for value in values]
    assert [queue.get_job(job_id).payload for job_id in ids] == values


def test_a_tuple_payload_is_stored_as_a_list(queue: Queue) -> None:
    job = queue.enqueue("q", (1, 2))
    assert queue.get_job(job.id).payload == [1, 2]
