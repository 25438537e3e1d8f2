"""The shortest path through the queue: enqueue, claim, ack."""

from persistent_queue import JobState, LeaseLost, Queue


def test_enqueue_dequeue_ack_round_trip(queue: Queue) -> None:
    job = queue.enqueue("emails", {"to": "a@b.c"})
    claimed = queue.dequeue("emails")
    assert claimed is not None and claimed.id == job.id
    assert claimed.payload == {"to": "a@b.c"}
    queue.ack(claimed)
    assert queue.get_job(job.id).state is JobState.DONE


def test_second_ack_is_an_error(queue: Queue) -> None:
    queue.enqueue("emails", 1)
    claimed = queue.dequeue("emails")
    assert claimed is not None
    queue.ack(claimed)
    try:
        queue.ack(claimed)
    except LeaseLost:
        return
    raise AssertionError("a double ack must raise LeaseLost")
