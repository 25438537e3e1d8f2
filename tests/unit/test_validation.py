"""Bad input: every rejection is a specific QueueError subclass, and nothing is stored."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import (
    InvalidArgument,
    InvalidInput,
    InvalidPayload,
    InvalidQueueName,
    PayloadTooLarge,
    Queue,
    QueueError,
)
from tests.support import FakeClock

MiB = 1024 * 1024


@pytest.fixture
def queue(db_path: Path, clock: FakeClock) -> Iterator[Queue]:
    """A queue that must hold nothing at all when the test ends."""
    q = Queue(db_path, clock=clock, durability="normal")
    yield q
    assert q.list_jobs() == [], "a rejected call stored a job"
    assert q.list_queues() == [], "a rejected call created a queue"
    assert q.dead_letters() == []
    q.close()


def reject(error: type[QueueError], call: Callable[[], Any]) -> QueueError:
    """``call`` raises exactly ``error`` (not merely some QueueError) with a message."""
    with pytest.raises(QueueError) as caught:
        call()
    assert type(caught.value) is error, f"{type(caught.value).__name__}: {caught.value}"
    assert isinstance(caught.value, InvalidInput) and isinstance(caught.value, ValueError)
    assert str(caught.value)
    return caught.value


# -- names -------------------------------------------------------------------------------------

BAD_NAMES: list[object] = [
    'x";DROP TABLE jobs;--',
    "x' OR '1'='1",
    "../x",
    "a/b",
    ".hidden",
    "-dash",
    "_under",
    "",
    " ",
    "tab\tname",
    "new\nline",
    "trailing\n",
    "nul\x00byte",
    "ünïcode",
    "x" * 129,
    None,
    42,
    b"bytes",
    ["list"],
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_queue_names_are_refused_everywhere(queue: Queue, name: Any) -> None:
    reject(InvalidQueueName, lambda: queue.enqueue(name, 1))
    reject(InvalidQueueName, lambda: queue.enqueue_many(name, [1, 2]))
    reject(InvalidQueueName, lambda: queue.dequeue(name))
    reject(InvalidQueueName, lambda: queue.create_queue(name))
    reject(InvalidQueueName, lambda: queue.get_queue(name))
    reject(InvalidQueueName, lambda: queue.pause(name))
    reject(InvalidQueueName, lambda: queue.delete_queue(name))
    if name is not None:  # None means "every queue" to these
        reject(InvalidQueueName, lambda: queue.stats(name))
        reject(InvalidQueueName, lambda: queue.dead_letters(name))
        reject(InvalidQueueName, lambda: queue.list_jobs(name))


@pytest.mark.parametrize("name", ["a", "A-b_c.d", "0", "x" * 128, "emails.v2"])
def test_good_queue_names_are_accepted(db_path: Path, name: str) -> None:
    with Queue(db_path) as q:
        q.enqueue(name, 1)
        assert [info.name for info in q.list_queues()] == [name]


# -- payloads ----------------------------------------------------------------------------------


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth - 1):
        value = [value]
    return value


class NotJson:
    pass


cyclic: list[Any] = []
cyclic.append(cyclic)

BAD_PAYLOADS: dict[str, Any] = {
    "nan": math.nan,
    "inf": math.inf,
    "-inf": -math.inf,
    "nan inside": {"a": [1, {"b": math.nan}]},
    "lone surrogate": "\ud800",
    "lone surrogate in a key": {"\udfff": 1},
    "int above 2^63-1": 2**63,
    "int below -2^63": -(2**63) - 1,
    "huge int inside": [1, 10**30],
    "nested 65 deep": nested(65),
    "nested 100000 deep": nested(100_000),
    "cyclic": cyclic,
    "set": {1, 2},
    "bytes": b"abc",
    "object": NotJson(),
    "decimal": Decimal("1.5"),
    "complex": 1j,
    "datetime": dt.datetime(2024, 1, 1),
    "int key": {1: "a"},
    "tuple key": {(1, 2): "a"},
    "function": print,
}


@pytest.mark.parametrize("payload", BAD_PAYLOADS.values(), ids=BAD_PAYLOADS.keys())
def test_bad_payloads_are_invalid_payload(queue: Queue, payload: Any) -> None:
    reject(InvalidPayload, lambda: queue.enqueue("q", payload))
    reject(InvalidPayload, lambda: queue.enqueue_many("q", [1, payload, 3]))


def test_nesting_64_deep_is_accepted(db_path: Path) -> None:
    with Queue(db_path) as q:
        job = q.enqueue("q", nested(64))
        assert q.get_job(job.id).payload == nested(64)


def test_the_64_bit_integer_bounds_are_accepted(db_path: Path) -> None:
    with Queue(db_path) as q:
        job = q.enqueue("q", [2**63 - 1, -(2**63)])
        assert q.get_job(job.id).payload == [2**63 - 1, -(2**63)]


def test_a_payload_one_byte_over_1_mib_is_too_large(queue: Queue) -> None:
    payload = "x" * (MiB - 2 + 1)  # two bytes of JSON quotes
    error = reject(PayloadTooLarge, lambda: queue.enqueue("q", payload))
    assert str(MiB + 1) in str(error)
    assert isinstance(error, InvalidPayload)
    reject(PayloadTooLarge, lambda: queue.enqueue_many("q", ["ok", payload]))


def test_a_payload_of_exactly_1_mib_is_accepted(db_path: Path) -> None:
    with Queue(db_path) as q:
        job = q.enqueue("q", "x" * (MiB - 2))
        assert len(q.get_job(job.id).payload) == MiB - 2


def test_size_is_measured_in_utf8_bytes(queue: Queue) -> None:
    payload = "é" * (MiB // 2)  # half a million characters, a whole MiB + 2 bytes of UTF-8
    reject(PayloadTooLarge, lambda: queue.enqueue("q", payload))


def test_the_payload_limit_is_configurable(db_path: Path) -> None:
    with Queue(db_path, max_payload_bytes=10) as q:
        q.enqueue("q", "12345678")
        reject(PayloadTooLarge, lambda: q.enqueue("q", "123456789"))
        assert len(q.list_jobs()) == 1


# -- headers -----------------------------------------------------------------------------------

BAD_HEADERS: dict[str, Any] = {
    "not a mapping": [("a", 1)],
    "a string": "a=1",
    "empty key": {"": 1},
    "key with a space": {"a b": 1},
    "key with a quote": {'a"b': 1},
    "key with a dollar": {"$.x": 1},
    "key too long": {"k" * 65: 1},
    "non-string key": {1: 1},
    "nested object": {"a": {"b": 1}},
    "list value": {"a": [1]},
    "nan value": {"a": math.nan},
    "huge int value": {"a": 2**64},
    "lone surrogate value": {"a": "\ud800"},
    "value too long": {"a": "v" * 1025},
    "too many": {f"h{n}": n for n in range(65)},
}


@pytest.mark.parametrize("headers", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_bad_headers_are_invalid_payload(queue: Queue, headers: Any) -> None:
    reject(InvalidPayload, lambda: queue.enqueue("q", 1, headers=headers))
    reject(InvalidPayload, lambda: queue.list_jobs(headers=headers))


# -- numbers -----------------------------------------------------------------------------------

BAD_PRIORITIES: list[Any] = [True, False, 1.0, 1.5, "1", None, 2**31, -(2**31) - 1, 10**20]


@pytest.mark.parametrize("priority", BAD_PRIORITIES, ids=repr)
def test_bad_priorities_are_invalid_argument(queue: Queue, priority: Any) -> None:
    reject(InvalidArgument, lambda: queue.enqueue("q", 1, priority=priority))
    reject(InvalidArgument, lambda: queue.enqueue_many("q", [1], priority=priority))


def test_the_priority_bounds_are_accepted(db_path: Path) -> None:
    with Queue(db_path) as q:
        top = q.enqueue("q", "top", priority=2**31 - 1)
        q.enqueue("q", "bottom", priority=-(2**31))
        claimed = q.dequeue("q")
        assert claimed is not None and claimed.id == top.id


BAD_SECONDS: list[Any] = [-1, -0.001, math.nan, math.inf, -math.inf, "5", True,
                          dt.timedelta(seconds=-1), 10**20]


@pytest.mark.parametrize("value", BAD_SECONDS, ids=repr)
def test_bad_delays_are_invalid_argument(queue: Queue, value: Any) -> None:
    reject(InvalidArgument, lambda: queue.enqueue("q", 1, delay=value))
    reject(InvalidArgument, lambda: queue.enqueue_many("q", [1], delay=value))


def test_a_delay_beyond_a_year_is_refused(queue: Queue) -> None:
    reject(InvalidArgument, lambda: queue.enqueue("q", 1, delay=367 * 86400))


@pytest.mark.parametrize("value", [*BAD_SECONDS, 0, 12 * 3600 + 1], ids=repr)
def test_bad_visibility_timeouts_are_invalid_argument(queue: Queue, value: Any) -> None:
    reject(InvalidArgument, lambda: queue.dequeue("q", visibility_timeout=value))
    reject(InvalidArgument, lambda: queue.create_queue("q", visibility_timeout=value))


@pytest.mark.parametrize("value", [-1, math.nan, math.inf, 3601, "1"], ids=repr)
def test_bad_waits_are_invalid_argument(queue: Queue, value: Any) -> None:
    reject(InvalidArgument, lambda: queue.dequeue("q", wait=value))


@pytest.mark.parametrize("value", [*BAD_SECONDS, 0], ids=repr)
def test_bad_lease_operations_are_refused_before_touching_the_lease(
    db_path: Path, value: Any
) -> None:
    with Queue(db_path) as q:
        q.enqueue("q", 1)
        job = q.dequeue("q")
        assert job is not None
        before = q.get_job(job.id)
        reject(InvalidArgument, lambda: q.extend(job, value))
        if value != 0:  # zero is a valid retry delay, not a valid lease length
            reject(InvalidArgument, lambda: q.nack(job, delay=value))
            reject(InvalidArgument, lambda: q.requeue(job, delay=value))
        assert q.get_job(job.id) == before


@pytest.mark.parametrize("value", [0, -1, True, 1.0, "3", 1_000_001], ids=repr)
def test_bad_max_attempts_are_invalid_argument(queue: Queue, value: Any) -> None:
    reject(InvalidArgument, lambda: queue.enqueue("q", 1, max_attempts=value))
    reject(InvalidArgument, lambda: queue.create_queue("q", max_attempts=value))


@pytest.mark.parametrize("value", [0, -5, True, 2.5], ids=repr)
def test_bad_max_size_is_invalid_argument(queue: Queue, value: Any) -> None:
    reject(InvalidArgument, lambda: queue.create_queue("q", max_size=value))


@pytest.mark.parametrize("job_id", [0, -1, True, 1.0, "1", 2**63], ids=repr)
def test_bad_job_ids_are_invalid_argument(queue: Queue, job_id: Any) -> None:
    reject(InvalidArgument, lambda: queue.get_job(job_id))
    reject(InvalidArgument, lambda: queue.ack(job_id, "token"))
    reject(InvalidArgument, lambda: queue.history(job_id))
    reject(InvalidArgument, lambda: queue.move_to_dead_letter_queue(job_id))


# -- limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, -1, 10_001, True, 2.0], ids=repr)
def test_bad_claim_counts_are_invalid_argument(queue: Queue, count: Any) -> None:
    reject(InvalidArgument, lambda: queue.dequeue_many("q", count))


@pytest.mark.parametrize(("limit", "offset"), [(0, 0), (10_001, 0), (1, -1), (True, 0)])
def test_bad_paging_is_invalid_argument(queue: Queue, limit: Any, offset: Any) -> None:
    reject(InvalidArgument, lambda: queue.list_jobs(limit=limit, offset=offset))
    reject(InvalidArgument, lambda: queue.dead_letters(limit=limit, offset=offset))


def test_a_batch_of_more_than_10000_is_refused_whole(queue: Queue) -> None:
    reject(InvalidArgument, lambda: queue.enqueue_many("q", range(10_001)))


def test_an_unknown_state_filter_is_invalid_argument(queue: Queue) -> None:
    reject(InvalidArgument, lambda: queue.list_jobs(state="finished"))


@pytest.mark.parametrize("kwargs", [
    {"durability": "fast"},
    {"visibility_timeout": 0},
    {"max_attempts": 0},
    {"max_payload_bytes": 0},
    {"poll_interval": math.nan},
], ids=repr)
def test_bad_queue_settings_are_refused_at_construction(
    tmp_path: Path, kwargs: dict[str, Any]
) -> None:
    target = tmp_path / "never.db"
    reject(InvalidArgument, lambda: Queue(target, **kwargs))
    assert not target.exists()


def test_an_unsupported_url_scheme_is_refused(tmp_path: Path) -> None:
    reject(InvalidArgument, lambda: Queue("mysql://localhost/db"))
