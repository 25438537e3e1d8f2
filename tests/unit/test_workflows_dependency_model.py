"""Property: whatever mix of enqueues, acks, failures and redrives happens, a job's state agrees
with its dependencies' states."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persistent_queue import Job, JobState, Queue
from tests.postgres_support import fresh_database
from tests.support import FakeClock

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(st.integers(0, 30), max_size=3)),
        st.tuples(st.just("ack"), st.just([])),
        st.tuples(st.just("fail"), st.just([])),
        st.tuples(st.just("redrive"), st.lists(st.integers(0, 30), min_size=1, max_size=1)),
    ),
    min_size=1,
    max_size=40,
)


def _check(queue: Queue, ids: list[int]) -> None:
    jobs = {job_id: queue.get_job(job_id) for job_id in ids}
    reasons = {d.id: d.reason for d in queue.dead_letters(limit=1000)}
    for job in jobs.values():
        parents = [jobs[p].state for p in job.depends_on]
        label = f"job {job.id} is {job.state.value} with dependencies {parents}"
        if job.state in (JobState.READY, JobState.LEASED, JobState.DONE):
            assert all(s is JobState.DONE for s in parents), label
        elif job.state is JobState.WAITING:
            assert any(s is not JobState.DONE for s in parents), label
        elif reasons[job.id] == "dependency failed":
            assert any(s is JobState.DEAD for s in parents), label


def _pick(items: list[int], index: int) -> int | None:
    return items[index % len(items)] if items else None


@pytest.mark.slow
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(OPERATIONS)
def test_job_states_agree_with_their_dependencies(
    backend: str, request: pytest.FixtureRequest, ops: list[tuple[str, list[int]]]
) -> None:
    with fresh_database(backend, request) as target, Queue(
        target, clock=FakeClock(), durability="normal", max_attempts=1
    ) as queue:
        ids: list[int] = []
        for op, args in ops:
            if op == "add":
                parents = sorted({p for i in args if (p := _pick(ids, i)) is not None})
                ids.append(queue.enqueue("q", len(ids), depends_on=parents).id)
            elif op in ("ack", "fail"):
                claimed: Job | None = queue.dequeue("q")
                if claimed is not None:
                    if op == "ack":
                        queue.ack(claimed)
                    else:
                        queue.nack(claimed, "boom")  # one attempt: dead-lettered
            else:
                dead = [d.id for d in queue.dead_letters(limit=1000)]
                target = _pick(sorted(dead), args[0])
                if target is not None:
                    queue.redrive(target)
            _check(queue, ids)
