"""Small pieces of the processes: rates, durations, line parsing, example handlers."""

from __future__ import annotations

from pathlib import Path

import pytest

from persistent_queue import InvalidInput, Job, JobState, handlers
from persistent_queue.durations import parse_duration
from persistent_queue.publisher import _split, parse_line, parse_rate


def make_job(payload: object) -> Job:
    return Job(id=1, queue="q", payload=payload, headers={}, priority=0, state=JobState.LEASED,
               attempts=1, max_attempts=3, lease_token="t", lease_expires_at=None,
               created_at=0.0, available_at=0.0, updated_at=0.0)


@pytest.mark.parametrize(("text", "per_second"),
                         [("50/s", 50.0), ("3000/m", 50.0), ("36/h", 0.01), ("7", 7.0)])
def test_rates(text: str, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["", "0/s", "-1/s", "fast", "5/d"])
def test_bad_rates(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_rate(text)


def test_durations() -> None:
    assert parse_duration("90") == 90 and parse_duration("15m") == 900
    assert parse_duration("7d") == 7 * 86400 and parse_duration("1.5h") == 5400
    with pytest.raises(InvalidInput, match="--every"):
        parse_duration("1 week", name="--every")


def test_line_formats() -> None:
    assert parse_line('{"a": 1}', "auto") == {"a": 1}
    assert parse_line("plain words", "auto") == "plain words"
    assert parse_line('{"a": 1}', "text") == '{"a": 1}'
    with pytest.raises(InvalidInput, match="not valid JSON"):
        parse_line("{oops", "json")


def test_only_complete_lines_are_split_off() -> None:
    assert _split(b"a\nb\r\nc") == ([b"a\n", b"b\r\n"], b"c")
    assert _split(b"no newline") == ([], b"no newline")


def test_fail_sometimes_follows_its_rate() -> None:
    with pytest.raises(RuntimeError, match="simulated failure"):
        handlers.fail_sometimes(make_job({"fail_rate": 1, "seconds": 0}))
    handlers.fail_sometimes(make_job({"fail_rate": 0, "seconds": 0}))


def test_drill_records_completions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "done.txt"
    monkeypatch.setenv("PQ_DRILL_RECORD", str(record))
    handlers.drill(make_job({"seconds": 0}))
    handlers.drill(make_job({"seconds": 0}))
    assert record.read_text() == "1\n1\n"
