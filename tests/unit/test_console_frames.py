"""The consoles' pure helpers: form parsing, formatting and DataFrames."""

from __future__ import annotations

import pytest

from persistent_queue import InvalidInput, Queue, ThroughputPoint
from persistent_queue.console.frames import (
    duration,
    jobs_frame,
    parse_headers,
    parse_json,
    size,
    throughput_frame,
)


def test_parse_json_names_the_position_of_the_mistake() -> None:
    assert parse_json('{"a": [1, 2]}') == {"a": [1, 2]}
    with pytest.raises(InvalidInput, match="line 2, column 1"):
        parse_json('{"a":\n}')
    with pytest.raises(InvalidInput, match="empty"):
        parse_json("   ")


def test_parse_headers_accepts_lines_or_a_json_object() -> None:
    assert parse_headers("") == {}
    assert parse_headers("tenant=acme\n\n region = eu=west ") == {"tenant": "acme",
                                                                  "region": "eu=west"}
    assert parse_headers('{"retries": 3}') == {"retries": 3}
    with pytest.raises(InvalidInput, match="line 2"):
        parse_headers("a=1\noops")
    with pytest.raises(InvalidInput, match="header object is not valid JSON"):
        parse_headers("{\"a\": 1")


def test_formatting() -> None:
    assert [duration(s) for s in (None, 5, 65, 7260, 90000, -3)] == [
        "-", "5s", "1m 05s", "2h 01m", "1d 01h", "-3s"]
    assert [size(n) for n in (10, 2048, 5 * 1024**3)] == ["10 B", "2.0 KiB", "5.0 GiB"]


def test_jobs_frame_shows_lease_and_delay(queue: Queue) -> None:
    queue.enqueue("emails", {"n": 1}, delay=90, headers={"tenant": "acme"})
    queue.enqueue("emails", {"n": 2})
    claimed = queue.dequeue("emails", visibility_timeout=30)
    assert claimed is not None
    frame = jobs_frame(queue.list_jobs("emails"), queue.now()).set_index("id")
    assert frame.loc[claimed.id, "lease left"] == "30s"
    assert frame.loc[claimed.id - 1, "available in"] == "1m 30s"
    assert frame.loc[claimed.id - 1, "headers"] == '{"tenant": "acme"}'


def test_throughput_frame_sums_queues_per_minute() -> None:
    points = [ThroughputPoint("a", 60.0, enqueued=2, acked=1),
              ThroughputPoint("b", 60.0, enqueued=3, failed=1),
              ThroughputPoint("a", 120.0, acked=4)]
    frame = throughput_frame(points)
    first = frame[frame["time"] == frame["time"].min()].set_index("series")["jobs"]
    assert first.to_dict() == {"enqueued": 5, "acked": 1, "failed": 1, "dead": 0}
    only_b = throughput_frame(points, "b")
    assert set(only_b["time"]) == {frame["time"].min()}


def test_throughput_frame_fills_quiet_minutes_with_zeros() -> None:
    points = [ThroughputPoint("a", 120.0, enqueued=2)]
    frame = throughput_frame(points, start=0.0, end=240.0, step=60.0)
    enqueued = frame[frame["series"] == "enqueued"]["jobs"].tolist()
    assert enqueued == [0, 0, 2, 0, 0]
