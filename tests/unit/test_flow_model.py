"""Flow control against a model: random limits, group keys, claims, acks, nacks and time.

Hypothesis draws a queue's limits (concurrency, rate, group concurrency, group rate), changes
them on the way, and drives producers (with and without group keys), consumers and the clock.
After every claim the limits must hold: live leases within ``concurrency`` and, per group,
within ``group_concurrency``; a claimed job of a group among the group's first
``group_concurrency`` unfinished jobs; no more claims in any window than each rate allows. And
the claim must take exactly as many jobs as the limits leave claimable (never fewer: nothing
starves), as the model computes them on its own.
"""

from __future__ import annotations

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

from persistent_queue import Queue, flow
from persistent_queue.flow import Rate
from tests.postgres_support import SessionCluster
from tests.support import FakeClock

QUEUE = "q"
VISIBILITY = 10.0
GROUPS = [None, "a", "b", "c"]
POSTGRES_EXAMPLES = 10

concurrencies = st.sampled_from([None, 1, 2, 3])
rates = st.sampled_from([None, "2/s", "3/2s"])
group_concurrencies = st.sampled_from([None, 1, 2])
group_rates = st.sampled_from([None, "1/s", "2/s"])


@dataclass
class ModelJob:
    id: int
    group: str | None
    state: str = "ready"  # ready, leased, done
    due: float = 0.0  # ready: claimable from; leased: lease end


class FlowMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.q = Queue(self.open_database(), clock=self.clock, durability="normal")
        self.jobs: dict[int, ModelJob] = {}
        self.leases: dict[int, str] = {}
        self.limits: dict[str, object] = {}
        self.grouped = False
        self.tat: float | None = None
        self.group_tat: dict[str, float | None] = {}
        #: Claim times since each rate last changed: the queue's, and each group's.
        self.claims: list[float] = []
        self.group_claims: dict[str, list[float]] = {}

    def open_database(self) -> Path | str:
        self.dir = Path(tempfile.mkdtemp(prefix="pq-flow-model-"))
        return self.dir / "queue.db"

    def close_database(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def teardown(self) -> None:
        self.q.close()
        self.close_database()

    @property
    def now(self) -> float:
        return self.clock.now

    # -- settings ----------------------------------------------------------------------------

    @initialize(concurrency=concurrencies, rate=rates, group_concurrency=group_concurrencies,
                group_rate=group_rates)
    def limited_queue(self, concurrency: int | None, rate: str | None,
                      group_concurrency: int | None, group_rate: str | None) -> None:
        self.limits = {"concurrency": concurrency, "rate_limit": rate,
                       "group_concurrency": group_concurrency, "group_rate_limit": group_rate}
        self.q.create_queue(QUEUE, max_attempts=1000, visibility_timeout=VISIBILITY,
                            **self.limits)  # type: ignore[arg-type]
        self.grouped = group_concurrency is not None or group_rate is not None

    @rule(concurrency=concurrencies, rate=rates, group_concurrency=group_concurrencies,
          group_rate=group_rates)
    def change_limits(self, concurrency: int | None, rate: str | None,
                      group_concurrency: int | None, group_rate: str | None) -> None:
        changes = {"concurrency": concurrency, "rate_limit": rate,
                   "group_concurrency": group_concurrency, "group_rate_limit": group_rate}
        info = self.q.update_queue(QUEUE, **changes)  # type: ignore[arg-type]
        assert (info.concurrency, info.rate_limit, info.group_concurrency,
                info.group_rate_limit) == tuple(changes.values())
        if rate != self.limits["rate_limit"]:  # a changed rate starts afresh
            self.tat, self.claims = None, []
        if group_rate != self.limits["group_rate_limit"]:
            self.group_tat, self.group_claims = {}, {}
        self.limits = changes
        self.grouped = group_concurrency is not None or group_rate is not None

    # -- producers and consumers -------------------------------------------------------------

    @rule(group=st.sampled_from(GROUPS), delay=st.sampled_from([0, 0, 0, 3]))
    def enqueue(self, group: str | None, delay: float) -> None:
        job = self.q.enqueue(QUEUE, len(self.jobs), group_key=group, delay=delay)
        assert job.group_key == group
        self.jobs[job.id] = ModelJob(job.id, group, due=self.now + delay)

    def group_of(self, job: ModelJob) -> str | None:
        """The job's group for the limits: None when group limits hold it back nowhere."""
        if not self.grouped or job.group is None:
            return None
        return job.group

    def live(self) -> list[ModelJob]:
        return [j for j in self.jobs.values() if j.state == "leased" and j.due > self.now]

    def claimable(self, job: ModelJob) -> bool:
        return job.state in ("ready", "leased") and job.due <= self.now

    def capacity(self) -> int:
        """How many jobs the limits let a claim take now (the model's own reckoning)."""
        live = self.live()
        budget = 10**9
        if self.limits["concurrency"] is not None:
            budget = min(budget, self.limits["concurrency"] - len(live))  # type: ignore[operator]
        if self.limits["rate_limit"] is not None:
            budget = min(budget, flow.allowance(self.tat, self.now,
                                                Rate.parse(self.limits["rate_limit"])))
        groups: dict[str | None, list[ModelJob]] = {}
        for job in sorted(self.jobs.values(), key=lambda j: j.id):
            if job.state in ("ready", "leased"):
                groups.setdefault(self.group_of(job), []).append(job)
        k, group_rate = self.limits["group_concurrency"], self.limits["group_rate_limit"]
        total = 0
        for key, unfinished in groups.items():
            if key is None or not self.grouped:
                total += sum(self.claimable(j) for j in unfinished)
                continue
            window = unfinished if k is None else unfinished[:k]  # type: ignore[misc]
            take = sum(self.claimable(j) for j in window)
            if k is not None:
                take = min(take, k - sum(j.group == key for j in live))  # type: ignore[operator]
            if group_rate is not None:
                take = min(take, flow.allowance(self.group_tat.get(key), self.now,
                                                Rate.parse(group_rate)))  # type: ignore[arg-type]
            total += max(take, 0)
        return max(0, min(budget, total))

    @rule(count=st.sampled_from([1, 1, 2, 4]), later=st.sampled_from([0.0, 0.0, 0.5, 11.0]))
    def dequeue(self, count: int, later: float) -> None:
        self.clock.advance(later)
        expected = min(count, self.capacity())
        k = self.limits["group_concurrency"]
        fronts: dict[str, list[int]] = {}
        for job in sorted(self.jobs.values(), key=lambda j: j.id):
            key = self.group_of(job)
            if key is not None and job.state in ("ready", "leased"):
                fronts.setdefault(key, []).append(job.id)
        claimed = self.q.dequeue_many(QUEUE, count)
        assert len(claimed) == expected, (len(claimed), expected, self.limits)
        for real in claimed:
            model = self.jobs[real.id]
            assert self.claimable(model), (real, model)
            key = self.group_of(model)
            if key is not None and k is not None:  # among its group's first k unfinished
                assert real.id in fronts[key][:k], (real.id, fronts[key], k)  # type: ignore[misc]
            model.state, model.due = "leased", self.now + VISIBILITY
            self.leases[real.id] = real.lease_token  # type: ignore[assignment]
            self.claims.append(self.now)
            if key is not None:
                self.group_claims.setdefault(key, []).append(self.now)
        if claimed and self.limits["rate_limit"] is not None:
            self.tat = flow.advance(self.tat, self.now, Rate.parse(self.limits["rate_limit"]),
                                    len(claimed))
        if self.limits["group_rate_limit"] is not None:
            served: dict[str, int] = {}
            for real in claimed:
                key = self.group_of(self.jobs[real.id])
                if key is not None:
                    served[key] = served.get(key, 0) + 1
            for key, n in served.items():
                self.group_tat[key] = flow.advance(
                    self.group_tat.get(key), self.now,
                    Rate.parse(self.limits["group_rate_limit"]), n)  # type: ignore[arg-type]
        self.limits_hold(claimed={self.group_of(self.jobs[job.id]) for job in claimed}
                         if claimed else None)

    def held(self) -> list[int]:
        return sorted(i for i in self.leases if self.jobs[i].state == "leased"
                      and self.jobs[i].due > self.now)

    @precondition(lambda self: self.held())
    @rule(data=st.data(), fail=st.booleans())
    def settle(self, data: st.DataObject, fail: bool) -> None:
        job_id = data.draw(st.sampled_from(self.held()))
        token = self.leases.pop(job_id)
        job = self.jobs[job_id]
        if fail:  # retried after a backoff: its group waits for it
            self.q.nack(job_id, "boom", delay=2, lease_token=token)
            job.state, job.due = "ready", self.now + 2
        else:
            self.q.ack(job_id, token)
            job.state = "done"

    @precondition(lambda self: self.held())
    @rule(data=st.data())
    def extend(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.held()))
        self.q.extend(job_id, 20, lease_token=self.leases[job_id])
        self.jobs[job_id].due = self.now + 20

    @rule(seconds=st.sampled_from([0.25, 1.0, 5.0, 10.0]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # -- invariants --------------------------------------------------------------------------

    def limits_hold(self, claimed: set[str | None] | None) -> None:
        """After a claim that took jobs (of the groups ``claimed``): within the limits. (A
        limit lowered below the jobs in flight holds back new claims; the leases go on.)"""
        live = self.live()
        if claimed is not None and self.limits["concurrency"] is not None:
            assert len(live) <= self.limits["concurrency"]  # type: ignore[operator]
        k = self.limits["group_concurrency"]
        if claimed is not None and k is not None:
            for key in claimed - {None}:
                assert sum(self.group_of(j) == key for j in live) <= k  # type: ignore[operator]
        for text, series in ((self.limits["rate_limit"], [self.claims]),
                             (self.limits["group_rate_limit"], self.group_claims.values())):
            if text is None:
                continue
            rate = Rate.parse(text)  # type: ignore[arg-type]
            for times in series:
                for i, start in enumerate(times):  # GCRA: a burst, then one per interval
                    for j in range(i, len(times)):
                        allowed = rate.count + (times[j] - start) / rate.interval + 1e-6
                        assert j - i + 1 <= allowed, (text, times)

    @invariant()
    def states_match(self) -> None:
        stored = {job.id: job for job in self.q.list_jobs(limit=10_000)}
        assert set(stored) == set(self.jobs)
        for job_id, model in self.jobs.items():
            assert stored[job_id].state.value == model.state, (stored[job_id], model)


FlowMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestFlowAgainstModel = FlowMachine.TestCase


@pytest.mark.postgres
@pytest.mark.slow
def test_flow_against_model_on_postgresql(pg_session: SessionCluster) -> None:
    """The same machine, each example on a fresh PostgreSQL database."""

    class OnPostgres(FlowMachine):
        def open_database(self) -> str:
            self.database = pg_session.new_database()
            return pg_session.url(self.database)

        def close_database(self) -> None:
            pg_session.release(self.database)

    run_state_machine_as_test(OnPostgres, settings=settings(
        FlowMachine.TestCase.settings, max_examples=POSTGRES_EXAMPLES))
