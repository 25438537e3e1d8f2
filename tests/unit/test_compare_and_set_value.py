"""`Queue.compare_and_set_value`: a stored value changes only from the value the caller saw."""

from __future__ import annotations

from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.support import in_thread


def test_the_first_write_expects_no_value(queue: Queue) -> None:
    assert queue.compare_and_set_value("offset", None, "10") is True
    assert queue.compare_and_set_value("offset", None, "20") is False
    assert queue.get_value("offset") == "10"


def test_a_value_changes_only_from_the_expected_one(queue: Queue) -> None:
    queue.set_value("offset", "10")
    assert queue.compare_and_set_value("offset", "5", "20") is False
    assert queue.get_value("offset") == "10"
    assert queue.compare_and_set_value("offset", "10", "20") is True
    assert queue.get_value("offset") == "20"
    assert queue.compare_and_set_value("offset", "20", "20") is True  # the same value again


def test_a_missing_value_is_not_created_when_one_is_expected(queue: Queue) -> None:
    assert queue.compare_and_set_value("offset", "10", "20") is False
    assert queue.get_value("offset") is None


def test_inside_atomic_it_commits_and_rolls_back_with_the_block(queue: Queue) -> None:
    with queue.atomic():
        assert queue.compare_and_set_value("offset", None, "4")
        queue.enqueue_many("lines", ["a", "b"])
    with pytest.raises(RuntimeError), queue.atomic():
        assert queue.compare_and_set_value("offset", "4", "6")
        queue.enqueue_many("lines", ["c", "d"])
        raise RuntimeError("crash after the writes")
    assert queue.get_value("offset") == "4"
    assert [job.payload for job in queue.list_jobs("lines", newest_first=False)] == ["a", "b"]


@pytest.mark.parametrize("before", [None, "10"])
def test_of_two_writers_expecting_the_same_value_exactly_one_succeeds(
        queue: Queue, db_path: Path | str, before: str | None) -> None:
    """The second writer, in another connection, waits for the first's transaction and then
    compares against what it committed (PostgreSQL: the row lock, READ COMMITTED's second
    look at the row; SQLite: the write lock)."""
    if before is not None:
        queue.set_value("offset", before)
    other = Queue(db_path, durability="normal")
    try:
        with queue.atomic():
            assert queue.compare_and_set_value("offset", before, "first")
            thread, outcome = in_thread(
                lambda: other.compare_and_set_value("offset", before, "second"))
            queue.enqueue("lines", "published with the first")
        thread.join(timeout=60)
        assert outcome == {"result": False}
        assert other.get_value("offset") == "first"
    finally:
        other.close()
