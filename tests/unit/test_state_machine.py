"""The queue against a model: random sequences of operations, checked after every step.

The model is a dict of jobs with their state, attempts, due time and current lease token.
Hypothesis drives producers, consumers (with current and stale tokens), the clock, the reaper
and redrives, and operators controlling jobs (cancel, confirm_cancel, set_progress, retry_now,
delete_job); after each step every job must be in exactly one place, in the state and with
the attempts the model predicts, and the dead-letter table must hold exactly the dead jobs.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from persistent_queue import (
    DeadLetter,
    InvalidJobState,
    Job,
    JobNotFound,
    JobState,
    LeaseLost,
    Queue,
    RetryPolicy,
)
from tests.postgres_support import SessionCluster
from tests.support import FakeClock

QUEUE = "q"
MAX_ATTEMPTS = 3
VISIBILITY = 10.0
SEED = 1234
#: Examples on PostgreSQL (each runs against the server: slower than a local file).
POSTGRES_EXAMPLES = 15


@dataclass
class ModelJob:
    id: int
    priority: int
    max_attempts: int
    state: str = "ready"  # ready, leased, done, dead, cancelled
    attempts: int = 0
    due: float = 0.0  # ready: claimable from; leased: lease end
    token: str | None = None
    dead_reason: str = ""
    cancel_requested: bool = False
    progress: float | None = None

    def claimable(self, now: float) -> bool:
        if self.state == "ready":
            return self.due <= now
        if self.state == "leased":
            return (self.due <= now and self.attempts < self.max_attempts
                    and not self.cancel_requested)
        return False

    def reaped(self, now: float) -> str | None:
        """What the reaper makes of this job now: dead, cancelled, or None (nothing)."""
        if self.state != "leased" or self.due > now:
            return None
        if self.cancel_requested:
            return "cancelled"
        return "dead" if self.attempts >= self.max_attempts else None

    def holds(self, token: str, now: float) -> bool:
        return self.state == "leased" and self.token == token and self.due > now


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.q = Queue(self.open_database(), clock=self.clock, durability="normal",
                       retry_policy=RetryPolicy(base=2.0, cap=8.0, rng=random.Random(SEED)))
        self.q.create_queue(QUEUE, max_attempts=MAX_ATTEMPTS, visibility_timeout=VISIBILITY)
        self.backoff = RetryPolicy(base=2.0, cap=8.0, rng=random.Random(SEED))
        self.jobs: dict[int, ModelJob] = {}
        self.leases: list[tuple[int, str]] = []  # every lease ever handed out

    def open_database(self) -> Path | str:
        """A new, empty database for one example (a SQLite file here)."""
        self.dir = Path(tempfile.mkdtemp(prefix="pq-model-"))
        return self.dir / "queue.db"

    def close_database(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def teardown(self) -> None:
        self.q.close()
        self.close_database()

    # -- helpers -----------------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.clock.now

    def settle(self) -> None:
        """Reap in the queue, and in the model: expired leases on their last attempt die,
        expired leases whose cancel was requested are cancelled."""
        self.q.reap()
        for job in self.jobs.values():
            self.apply_reap(job)

    def apply_reap(self, job: ModelJob) -> None:
        fate = job.reaped(self.now)
        if fate == "dead":
            job.state, job.token, job.dead_reason = "dead", None, "lease expired"
        elif fate == "cancelled":
            job.state, job.token = "cancelled", None

    def snapshot(self) -> tuple[list[Job], list[DeadLetter]]:
        """Everything stored, read without reaping (``Queue.dead_letters`` reaps first)."""
        return (self.q.list_jobs(limit=10_000),
                self.q.backend.dead_letters(None, limit=10_000, offset=0))

    def fenced(self, job_id: int, token: str) -> tuple[ModelJob, bool]:
        job = self.jobs[job_id]
        return job, job.holds(token, self.now)

    # -- producers ---------------------------------------------------------------------------

    @initialize(priorities=st.lists(st.integers(-2, 2), min_size=1, max_size=4))
    def some_work(self, priorities: list[int]) -> None:
        for priority in priorities:
            self.enqueue(priority, 0, None)

    @rule(priority=st.integers(-2, 2), delay=st.sampled_from([0, 0, 5]),
          max_attempts=st.sampled_from([None, 1, 2]))
    def enqueue(self, priority: int, delay: float, max_attempts: int | None) -> None:
        job = self.q.enqueue(QUEUE, {"n": len(self.jobs)}, priority=priority, delay=delay,
                             max_attempts=max_attempts)
        assert job.id not in self.jobs
        self.jobs[job.id] = ModelJob(job.id, priority, max_attempts or MAX_ATTEMPTS,
                                     due=self.now + delay)

    # -- consumers ---------------------------------------------------------------------------

    @rule(count=st.sampled_from([1, 1, 2]), later=st.sampled_from([0.0, 0.0, 10.0]))
    def dequeue(self, count: int, later: float) -> None:
        """A consumer polls, possibly after a pause long enough for leases to expire."""
        self.clock.advance(later)
        expected = sorted((j for j in self.jobs.values() if j.claimable(self.now)),
                          key=lambda j: (-j.priority, j.id))[:count]
        claimed = self.q.dequeue_many(QUEUE, count)
        assert [j.id for j in claimed] == [j.id for j in expected]
        for real, model in zip(claimed, expected, strict=True):
            assert real.lease_token and real.lease_token != model.token
            model.state, model.token = "leased", real.lease_token
            model.attempts += 1
            model.due = self.now + VISIBILITY
            model.progress = None  # each claim starts at no progress
            assert real.attempts == model.attempts and real.progress is None
            assert not real.cancel_requested
            self.leases.append((real.id, real.lease_token))

    def current_or_stale(self, data: st.DataObject) -> tuple[int, str]:
        """Mostly a lease the consumer still holds; sometimes any lease ever handed out."""
        held = [(i, t) for i, t in self.leases if self.jobs[i].holds(t, self.now)]
        if held and data.draw(st.sampled_from([True, True, True, False])):
            return data.draw(st.sampled_from(held))
        return data.draw(st.sampled_from(self.leases))

    @precondition(lambda self: self.leases)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        job_id, token = self.current_or_stale(data)
        job, holds = self.fenced(job_id, token)
        if not holds:
            return self.refused(lambda: self.q.ack(job_id, token))
        self.q.ack(job_id, token)
        job.state, job.token = "done", None

    @precondition(lambda self: self.leases)
    @rule(data=st.data(), delay=st.sampled_from([None, 0, 3]))
    def nack(self, data: st.DataObject, delay: float | None) -> None:
        job_id, token = self.current_or_stale(data)
        job, holds = self.fenced(job_id, token)
        if not holds:
            return self.refused(lambda: self.q.nack(job_id, "e", delay=delay, lease_token=token))
        result = self.q.nack(job_id, "e", delay=delay, lease_token=token)
        job.token = None
        if job.cancel_requested:  # asked to stop: cancelled, never retried
            assert isinstance(result, Job) and result.state.value == "cancelled"
            job.state = "cancelled"
        elif job.attempts >= job.max_attempts:
            assert isinstance(result, DeadLetter)
            job.state, job.dead_reason = "dead", "failed"
        else:
            wait = self.backoff.delay(job.attempts) if delay is None else delay
            job.state, job.due = "ready", self.now + wait
            assert isinstance(result, Job) and result.available_at == job.due

    @precondition(lambda self: self.leases)
    @rule(data=st.data(), delay=st.sampled_from([0, 2]))
    def requeue(self, data: st.DataObject, delay: float) -> None:
        job_id, token = self.current_or_stale(data)
        job, holds = self.fenced(job_id, token)
        if not holds:
            return self.refused(lambda: self.q.requeue(job_id, delay, lease_token=token))
        self.q.requeue(job_id, delay, lease_token=token)
        if job.cancel_requested:  # given back after a cancel request: cancelled
            job.state, job.token = "cancelled", None
            return None
        job.state, job.token, job.due = "ready", None, self.now + delay
        job.attempts -= 1
        return None

    @precondition(lambda self: self.leases)
    @rule(data=st.data(), seconds=st.sampled_from([1.0, 20.0]))
    def extend(self, data: st.DataObject, seconds: float) -> None:
        job_id, token = self.current_or_stale(data)
        job, holds = self.fenced(job_id, token)
        if not holds:
            return self.refused(lambda: self.q.extend(job_id, seconds, lease_token=token))
        extended = self.q.extend(job_id, seconds, lease_token=token)
        job.due = self.now + seconds
        assert extended.lease_expires_at == job.due
        assert extended.cancel_requested == job.cancel_requested

    @precondition(lambda self: len(self.leases) > 1)
    @rule(data=st.data())
    def stale_ack_with_an_old_token(self, data: st.DataObject) -> None:
        """Old tokens of jobs whose lease moved on never work, for any operation."""
        stale = [(i, t) for i, t in self.leases if not self.jobs[i].holds(t, self.now)]
        if not stale:
            return None
        job_id, token = data.draw(st.sampled_from(stale))
        operation = data.draw(st.sampled_from(["ack", "nack", "extend", "requeue", "dlq",
                                               "progress", "confirm_cancel"]))
        stale_job = self.lease_of(job_id, token)
        calls = {
            "ack": lambda: self.q.ack(job_id, token),
            "nack": lambda: self.q.nack(job_id, "late", lease_token=token),
            "extend": lambda: self.q.extend(job_id, 30, lease_token=token),
            "requeue": lambda: self.q.requeue(job_id, lease_token=token),
            "dlq": lambda: self.q.move_to_dead_letter_queue(job_id, lease_token=token),
            "progress": lambda: self.q.set_progress(stale_job, 0.5),
            "confirm_cancel": lambda: self.q.confirm_cancel(stale_job),
        }
        return self.refused(calls[operation])

    def lease_of(self, job_id: int, token: str) -> Job:
        """A claimed job as a consumer holds it (what set_progress/confirm_cancel take)."""
        return Job(id=job_id, queue=QUEUE, payload=None, headers={}, priority=0,
                   state=JobState.LEASED, attempts=0, max_attempts=1, lease_token=token,
                   lease_expires_at=None, created_at=0, available_at=0, updated_at=0)

    def refused(self, call: object) -> None:
        before = self.snapshot()
        try:
            call()  # type: ignore[operator]
        except LeaseLost:
            pass
        else:
            raise AssertionError("a stale or foreign lease was accepted")
        assert self.snapshot() == before, "a refused operation changed something"

    # -- time and operators ------------------------------------------------------------------

    @rule(seconds=st.sampled_from([0.5, 4.0, 9.99, 10.0, 15.0]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)


    @rule(data=st.data())
    def redrive(self, data: st.DataObject) -> None:
        self.settle()
        dead = sorted(j.id for j in self.jobs.values() if j.state == "dead")
        if dead and data.draw(st.booleans()):
            targets = [data.draw(st.sampled_from(dead))]
            assert self.q.redrive(targets[0]) == targets
        else:
            targets = dead
            assert self.q.redrive(QUEUE) == targets
        for job_id in targets:
            job = self.jobs[job_id]
            job.state, job.attempts, job.due = "ready", 0, self.now
            job.cancel_requested, job.progress = False, None

    @rule(data=st.data())
    def operator_dead_letters_by_id(self, data: st.DataObject) -> None:
        if not self.jobs:
            return
        self.settle()
        job = self.jobs[data.draw(st.sampled_from(sorted(self.jobs)))]
        if job.state in ("done", "dead", "cancelled"):
            try:
                self.q.move_to_dead_letter_queue(job.id)
            except InvalidJobState:
                return
            raise AssertionError(f"a {job.state} job was dead-lettered again")
        if job.state == "leased" and job.due > self.now:
            return self.refused(lambda: self.q.move_to_dead_letter_queue(job.id))
        self.q.move_to_dead_letter_queue(job.id, "operator")
        job.state, job.token, job.dead_reason = "dead", None, "operator"

    # -- operators controlling one job -------------------------------------------------------

    def some_job(self, data: st.DataObject) -> ModelJob | None:
        if not self.jobs:
            return None
        return self.jobs[data.draw(st.sampled_from(sorted(self.jobs)))]

    @rule(data=st.data())
    def operator_cancels(self, data: st.DataObject) -> None:
        job = self.some_job(data)
        if job is None:
            return None
        self.settle()
        if job.state in ("done", "dead", "cancelled"):
            before = self.snapshot()
            try:
                self.q.cancel(job.id)
            except InvalidJobState:
                assert self.snapshot() == before
                return None
            raise AssertionError(f"a {job.state} job was cancelled")
        result = self.q.cancel(job.id, reason="operator")
        if job.state == "leased" and job.due > self.now:  # running: asked to stop
            job.cancel_requested = True
            assert result.state.value == "leased" and result.cancel_requested
        else:  # ready, delayed, backing off, or its lease already expired
            job.state, job.token, job.cancel_requested = "cancelled", None, True
            assert result.state.value == "cancelled"
        return None

    @precondition(lambda self: self.leases)
    @rule(data=st.data())
    def worker_confirms_cancel(self, data: st.DataObject) -> None:
        job_id, token = self.current_or_stale(data)
        job, holds = self.fenced(job_id, token)
        lease = self.lease_of(job_id, token)
        if not holds:
            return self.refused(lambda: self.q.confirm_cancel(lease))
        if not job.cancel_requested:
            before = self.snapshot()
            with pytest.raises(InvalidJobState):
                self.q.confirm_cancel(lease)
            assert self.snapshot() == before
            return None
        assert self.q.confirm_cancel(lease).state.value == "cancelled"
        job.state, job.token = "cancelled", None
        return None

    @precondition(lambda self: self.leases)
    @rule(data=st.data(), fraction=st.sampled_from([0.0, 0.5, 1.0]))
    def handler_reports_progress(self, data: st.DataObject, fraction: float) -> None:
        job_id, token = self.current_or_stale(data)
        job, holds = self.fenced(job_id, token)
        lease = self.lease_of(job_id, token)
        if not holds:
            return self.refused(lambda: self.q.set_progress(lease, fraction))
        stored = self.q.set_progress(lease, fraction, "step")
        job.due = max(job.due, self.now + VISIBILITY)  # renewed, never shortened
        job.progress = fraction
        assert stored.lease_expires_at == job.due
        assert stored.cancel_requested == job.cancel_requested
        return None

    @rule(data=st.data())
    def operator_retries_now(self, data: st.DataObject) -> None:
        job = self.some_job(data)
        if job is None:
            return None
        self.settle()
        if job.state == "ready" and job.due > self.now:
            assert self.q.retry_now(job.id).available_at == self.now
            job.due = self.now
            return None
        before = self.snapshot()
        with pytest.raises(InvalidJobState):
            self.q.retry_now(job.id)
        assert self.snapshot() == before
        return None

    @rule(data=st.data())
    def operator_deletes(self, data: st.DataObject) -> None:
        job = self.some_job(data)
        if job is None:
            return None
        self.settle()
        if job.state in ("leased", "dead"):
            before = self.snapshot()
            with pytest.raises(InvalidJobState):
                self.q.delete_job(job.id)
            assert self.snapshot() == before
            return None
        self.q.delete_job(job.id)
        del self.jobs[job.id]
        self.leases = [(i, t) for i, t in self.leases if i != job.id]
        with pytest.raises(JobNotFound):
            self.q.get_job(job.id)
        return None

    # -- invariants --------------------------------------------------------------------------

    def pending_reap(self) -> set[int]:
        """Expired leases on their last attempt (dead) or asked to stop (cancelled), whether
        or not reaped yet."""
        return {j.id for j in self.jobs.values() if j.reaped(self.now) is not None}

    @rule(reap=st.booleans())
    def operator_reads_stats(self, reap: bool) -> None:
        if reap:
            self.settle()
        stats = self.q.stats(QUEUE)  # may reap: stats report exhausted leases as dead
        self.matches_the_model()
        jobs = list(self.jobs.values())
        now = self.now
        assert stats.ready == sum(j.state == "ready" and j.due <= now for j in jobs)
        assert stats.scheduled == sum(j.state == "ready" and j.due > now for j in jobs)
        assert stats.leased == sum(j.state == "leased" for j in jobs)
        assert stats.done == sum(j.state == "done" for j in jobs)
        assert stats.dead == sum(j.state == "dead" for j in jobs)
        assert stats.cancelled == sum(j.state == "cancelled" for j in jobs)

    @invariant()
    def matches_the_model(self) -> None:
        live, dead = self.snapshot()
        live_ids = [j.id for j in live]
        dead_ids = [d.id for d in dead]
        # every job in exactly one place
        assert len(set(live_ids)) == len(live_ids)
        assert not set(live_ids) & set(dead_ids)
        assert set(live_ids) | set(dead_ids) == set(self.jobs)
        pending = self.pending_reap()
        reaped = (pending & set(dead_ids)) | {j.id for j in live if j.id in pending
                                              and j.state.value == "cancelled"}
        for job_id in reaped:  # the queue reaped it: so does the model
            self.apply_reap(self.jobs[job_id])
        for real in live:
            model = self.jobs[real.id]
            assert real.state.value == model.state, (real, model)
            assert real.attempts == model.attempts, (real, model)
            assert real.cancel_requested == model.cancel_requested, (real, model)
            assert (None if real.progress is None else real.progress.fraction) == (
                model.progress), (real, model)
            if model.state == "ready":
                assert real.available_at == model.due
            if model.state == "leased":
                assert real.lease_expires_at == model.due
        model_dead = {j.id: j for j in self.jobs.values() if j.state == "dead"}
        assert set(dead_ids) == set(model_dead)
        for letter in dead:
            model = model_dead[letter.id]
            assert letter.attempts == model.attempts
            assert letter.reason.startswith(model.dead_reason), (letter, model)


QueueMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=False,
)
TestQueueAgainstModel = QueueMachine.TestCase


@pytest.mark.postgres
@pytest.mark.slow
def test_queue_against_model_on_postgresql(pg_session: SessionCluster) -> None:
    """The same machine, each example on a fresh PostgreSQL database."""

    class OnPostgres(QueueMachine):
        def open_database(self) -> str:
            self.database = pg_session.new_database()
            return pg_session.url(self.database)

        def close_database(self) -> None:
            pg_session.release(self.database)

    run_state_machine_as_test(OnPostgres, settings=settings(
        QueueMachine.TestCase.settings, max_examples=POSTGRES_EXAMPLES))
