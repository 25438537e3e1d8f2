"""Headers travel with every workflow job and can filter list_jobs."""

from __future__ import annotations

from persistent_queue import JobState, Queue
from tests.support import FakeClock


def test_filter_by_a_null_header_value(queue: Queue) -> None:
    with_null = queue.enqueue("q", 1, headers={"trace": None, "tenant": "acme"})
    queue.enqueue("q", 2, headers={"tenant": "acme"})
    queue.enqueue("q", 3, headers={"trace": "t-1"})
    assert [j.id for j in queue.list_jobs("q", headers={"trace": None})] == [with_null.id]
    assert len(queue.list_jobs("q", headers={"tenant": "acme"})) == 2


def test_headers_travel_through_every_workflow(queue: Queue, clock: FakeClock) -> None:
    parent = queue.enqueue("etl", 0, headers={"run": "r1"})
    child = queue.enqueue("etl", 1, headers={"run": "r1", "step": "load"},
                          depends_on=[parent], dedup_key="load-r1")
    assert queue.get_job(child.id).headers == {"run": "r1", "step": "load"}
    assert queue.enqueue("etl", 9, dedup_key="load-r1").headers == child.headers
    queue.subscribe("runs", queue="audit")
    copy = queue.publish("runs", {"run": "r1"}, headers={"run": "r1"})[0]
    queue.schedule("nightly", 1, every=60, headers={"run": "r1"})
    clock.advance(60)
    queue.run_due_schedules()
    found = {j.id for j in queue.list_jobs(headers={"run": "r1"}, limit=100)}
    assert {parent.id, child.id, copy.id} <= found and len(found) == 4
    assert {j.queue for j in queue.list_jobs(headers={"schedule": "nightly"})} == {"nightly"}
    waiting = queue.list_jobs(state="waiting", headers={"step": "load"})
    assert [j.id for j in waiting] == [child.id]
    queue.move_to_dead_letter_queue(parent.id)
    dead = queue.get_job(child.id)
    assert dead.state is JobState.DEAD and dead.headers == child.headers
    assert dead.depends_on == (parent.id,) and dead.dedup_key == "load-r1"
