"""`Queue.atomic()`: several writes commit together or not at all."""

from __future__ import annotations

import pytest

from persistent_queue import Queue, StorageError


def test_jobs_and_value_commit_together(queue: Queue) -> None:
    with queue.atomic():
        queue.enqueue_many("lines", ["a", "b"])
        queue.set_value("offset", "4")
    assert queue.stats("lines").ready == 2
    assert queue.get_value("offset") == "4"


def test_an_error_inside_rolls_back_everything(queue: Queue) -> None:
    queue.set_value("offset", "0")
    with pytest.raises(RuntimeError), queue.atomic():
        queue.enqueue_many("lines", ["a", "b"])
        queue.set_value("offset", "4")
        raise RuntimeError("crash between the writes")
    assert queue.get_value("offset") == "0"
    assert queue.list_jobs("lines") == []
    queue.enqueue("lines", "after")  # the connection is usable again
    assert len(queue.list_jobs("lines")) == 1


def test_blocks_do_not_nest(queue: Queue) -> None:
    with queue.atomic(), pytest.raises(StorageError), queue.atomic():
        pass
