"""Dependencies: a job waits until every job it depends on is acked."""

from __future__ import annotations

import pytest

from persistent_queue import InvalidArgument, InvalidDependency, Job, JobState, Queue
from tests.support import FakeClock


def _run(queue: Queue, name: str) -> Job:
    job = queue.dequeue(name)
    assert job is not None, f"expected a ready job in {name}"
    queue.ack(job)
    return job


def test_c_runs_only_after_a_and_b(queue: Queue) -> None:
    a = queue.enqueue("etl", "A")
    b = queue.enqueue("etl", "B")
    c = queue.enqueue("report", "C", depends_on=[a, b.id])
    assert c.state is JobState.WAITING and c.depends_on == (a.id, b.id)
    assert queue.dequeue("report") is None
    assert queue.stats("report").waiting == 1
    _run(queue, "etl")
    assert queue.get_job(c.id).state is JobState.WAITING
    assert queue.dequeue("report") is None
    _run(queue, "etl")
    # Ready at once: released inside the last ack's transaction.
    assert queue.get_job(c.id).state is JobState.READY
    claimed = queue.dequeue("report")
    assert claimed is not None and claimed.id == c.id and claimed.depends_on == (a.id, b.id)


def test_a_nacked_dependency_keeps_the_dependent_waiting(queue: Queue) -> None:
    a = queue.enqueue("etl", "A", max_attempts=3)
    c = queue.enqueue("etl", "C", depends_on=[a])
    claimed = queue.dequeue("etl")
    assert claimed is not None and claimed.id == a.id
    queue.nack(claimed, "flaky", delay=0)
    assert queue.get_job(c.id).state is JobState.WAITING
    _run(queue, "etl")
    assert queue.get_job(c.id).state is JobState.READY


def test_dependency_on_a_done_job_is_ready_at_once(queue: Queue) -> None:
    a = queue.enqueue("etl", "A")
    _run(queue, "etl")
    c = queue.enqueue("etl", "C", depends_on=[a.id])
    assert c.state is JobState.READY


def test_unknown_and_future_ids_are_rejected_and_nothing_is_stored(queue: Queue) -> None:
    a = queue.enqueue("etl", "A")
    for bad in ([a.id + 1], [a.id, 999_999]):  # the next id: the only way to form a cycle
        with pytest.raises(InvalidDependency, match="does not exist"):
            queue.enqueue("etl", "C", depends_on=bad)
    assert [job.id for job in queue.list_jobs("etl")] == [a.id]


@pytest.mark.parametrize("bad", ["1,2", 5, [0], [-3], [1.5], [True], {"a": 1}])
def test_malformed_depends_on_is_invalid_argument(queue: Queue, bad: object) -> None:
    queue.enqueue("etl", "A")
    with pytest.raises(InvalidArgument):
        queue.enqueue("etl", "C", depends_on=bad)  # type: ignore[arg-type]


def test_dead_lettered_dependency_cascades_transitively(queue: Queue) -> None:
    a = queue.enqueue("etl", "A", max_attempts=1)
    b = queue.enqueue("etl", "B", depends_on=[a])
    c = queue.enqueue("other", "C", depends_on=[b])
    unrelated = queue.enqueue("etl", "U")
    claimed = queue.dequeue("etl")
    assert claimed is not None and claimed.id == a.id
    queue.nack(claimed, "boom")
    letters = {d.id: d for d in queue.dead_letters()}
    assert set(letters) == {a.id, b.id, c.id}
    assert letters[b.id].reason == "dependency failed"
    assert letters[c.id].reason == "dependency failed"
    assert queue.get_job(c.id).state is JobState.DEAD
    assert queue.get_job(unrelated.id).state is JobState.READY
    assert queue.stats("etl").dead == 2 and queue.stats("other").dead == 1


def test_redriving_the_dependency_puts_dependents_back_to_waiting(queue: Queue) -> None:
    a = queue.enqueue("etl", "A", max_attempts=1)
    b = queue.enqueue("etl", "B", depends_on=[a])
    c = queue.enqueue("etl", "C", depends_on=[b])
    queue.move_to_dead_letter_queue(a.id, "operator")
    assert {d.id for d in queue.dead_letters()} == {a.id, b.id, c.id}
    assert queue.redrive(a.id) == [a.id]
    assert queue.dead_letters() == []
    assert queue.get_job(a.id).state is JobState.READY
    assert queue.get_job(b.id).state is JobState.WAITING
    assert queue.get_job(c.id).state is JobState.WAITING
    assert queue.get_job(c.id).depends_on == (b.id,)
    _run(queue, "etl")
    assert queue.get_job(b.id).state is JobState.READY
    assert [e.event for e in queue.history(b.id)][-1] == "redriven"


def test_dependent_stays_dead_while_another_dependency_is_dead(queue: Queue) -> None:
    a = queue.enqueue("etl", "A")
    b = queue.enqueue("etl", "B")
    c = queue.enqueue("etl", "C", depends_on=[a, b])
    queue.move_to_dead_letter_queue(a.id)
    queue.move_to_dead_letter_queue(b.id)
    queue.redrive(a.id)
    assert queue.get_job(c.id).state is JobState.DEAD
    queue.redrive(b.id)
    assert queue.get_job(c.id).state is JobState.WAITING


def test_redriving_a_whole_queue_restores_the_graph(queue: Queue) -> None:
    a = queue.enqueue("etl", "A")
    c = queue.enqueue("etl", "C", depends_on=[a])
    queue.move_to_dead_letter_queue(a.id)
    assert sorted(queue.redrive("etl")) == [a.id, c.id]
    assert queue.get_job(c.id).state is JobState.WAITING
    assert [e.event for e in queue.history(c.id)].count("redriven") == 1
    _run(queue, "etl")
    assert queue.get_job(c.id).state is JobState.READY


def test_enqueue_after_the_dependency_died_is_dead_at_once(queue: Queue) -> None:
    a = queue.enqueue("etl", "A")
    queue.move_to_dead_letter_queue(a.id)
    c = queue.enqueue("etl", "C", depends_on=[a])
    assert c.state is JobState.DEAD
    assert queue.dead_letters()[0].reason == "dependency failed"
    queue.redrive(a.id)
    assert queue.get_job(c.id).state is JobState.WAITING


def test_expired_last_lease_cascades(queue: Queue, clock: FakeClock) -> None:
    a = queue.enqueue("etl", "A", max_attempts=1)
    c = queue.enqueue("etl", "C", depends_on=[a])
    assert queue.dequeue("etl", visibility_timeout=5) is not None
    clock.advance(6)
    assert queue.reap() == 1
    assert queue.get_job(c.id).state is JobState.DEAD


def test_released_job_keeps_its_own_delay(queue: Queue, clock: FakeClock) -> None:
    a = queue.enqueue("etl", "A")
    c = queue.enqueue("later", "C", depends_on=[a], delay=60)
    _run(queue, "etl")
    assert queue.get_job(c.id).state is JobState.READY
    assert queue.dequeue("later") is None
    clock.advance(61)
    assert queue.dequeue("later") is not None


def test_cleanup_of_done_dependents_forgets_their_edges(queue: Queue, clock: FakeClock) -> None:
    a = queue.enqueue("etl", "A")
    queue.enqueue("etl", "C", depends_on=[a])
    _run(queue, "etl")
    _run(queue, "etl")
    clock.advance(10)
    assert queue.cleanup(older_than=1) == 2
    rows = queue.backend.execute_read(  # type: ignore[attr-defined]
        "SELECT count(*) FROM job_dependencies")
    assert rows[0][0] == 0
