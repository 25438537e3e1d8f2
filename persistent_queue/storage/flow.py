"""Flow control, written once for every dialect: limited claims and what waits for them.

:class:`FlowControl` is the fourth layer of :class:`~.core.SQLBackend`, above
:class:`~.control.JobControl`. A queue without limits never reaches it beyond one flag: the
plain claim (the dialect's ``claim`` statement) refuses a queue whose ``limited`` flag is set,
in the lookup that already reads ``paused``, and the core then takes the limited path here.
Which queues are limited is remembered per process (``_limited``) only to try that path
first: each path checks the flag in its own transaction, so a stale memory costs a statement,
never a limit.

A limited claim is one transaction that holds the queue (SQLite's write lock; on PostgreSQL
the queue's row, ``FOR UPDATE``): it counts the queue's live leases through ``jobs_leases``
(bounded by the consumers' concurrency), reads the rate state (GCRA, :mod:`..flow`), picks the
jobs, leases them with ``claim_chosen`` and stores the new rate state, so no interleaving of
processes exceeds a limit. On a queue with group limits it reads the first few unfinished jobs
of each group through ``jobs_groups`` (enqueue order) and takes them in rotation: higher
priority first, then one job per group per turn, the group served least recently first. The
same plan, read-only, tells a waiting consumer whether a claim may succeed now and, if not,
when the limits next let one go (:meth:`FlowControl.flow_outlook`): it sleeps until then or
until a commit, and claims only when a claim can succeed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import flow
from ..flow import Rate
from .control import JobControl

#: The group of a grouped queue's jobs enqueued without a key: held back by no group limit.
DEFAULT_GROUP = ""
#: The most jobs a read-only plan considers (the stats' count of held-back jobs is "at least").
_PLAN_CAP = 1000


@dataclass(frozen=True, slots=True)
class Limits:
    """A queue's flow-control settings, read from its row."""

    concurrency: int | None = None
    rate: Rate | None = None
    group_concurrency: int | None = None
    group_rate: Rate | None = None

    @classmethod
    def of(cls, row: Any) -> Limits:
        """The limits of a ``queues`` row."""
        return cls(concurrency=row["concurrency"],
                   rate=_rate(row["rate_count"], row["rate_period"]),
                   group_concurrency=row["group_concurrency"],
                   group_rate=_rate(row["group_rate_count"], row["group_rate_period"]))

    @property
    def grouped(self) -> bool:
        """Whether a group limit is set (claims then rotate over groups)."""
        return self.group_concurrency is not None or self.group_rate is not None


def _rate(count: int | None, period: float | None) -> Rate | None:
    return None if count is None or period is None else Rate(int(count), float(period))


@dataclass(slots=True)
class Plan:
    """What a limited claim may take now, and why it may not take more."""

    #: The jobs to lease, in claim order.
    ids: list[int] = field(default_factory=list)
    #: For each group the claim takes jobs of: how many, its new turn, its rate state before.
    groups: dict[str, tuple[int, int, float | None]] = field(default_factory=dict)
    #: Claimable jobs a limit held back (at least this many).
    held: int = 0
    #: When a limit next lets a held-back job go without any other change (a lease ends, the
    #: rate's next slot, a delayed first job of a group comes due); None if only a commit can.
    wake_at: float | None = None

    def wake(self, at: float | None) -> None:
        """Keep the earliest time a limit lets a job go."""
        if at is not None and (self.wake_at is None or at < self.wake_at):
            self.wake_at = at


class FlowControl(JobControl):
    """Claims from limited queues (see the module docstring)."""

    def __init__(self, dialect: Any) -> None:
        super().__init__(dialect)
        #: Queues this process has found limited: their claims take the limited path first.
        self._limited: set[str] = set()

    # -- claiming ---------------------------------------------------------------------------

    def _claim_rows(self, queue: str, limit: int, visibility_timeout: float | None,
                    now: float, worker: str | None) -> list[Any]:
        """Lease up to ``limit`` jobs, by the plain claim or, for a queue with limits, the
        limited one. Rows in the ``claim`` statement's column order."""
        if queue not in self._limited:
            rows = self.dialect.write(
                lambda: self.dialect.claim_rows(queue, limit, visibility_timeout, now, worker),
                grouped=True)
            if rows or not self._is_limited(queue):
                return rows
        limited = self.dialect.write(
            lambda: self._claim_limited(queue, limit, visibility_timeout, now, worker),
            grouped=True)
        if limited is None:  # its limits are gone: the plain claim
            self._limited.discard(queue)
            return self._claim_rows(queue, limit, visibility_timeout, now, worker)
        return limited

    def _is_limited(self, queue: str) -> bool:
        """Whether the queue has limits (remembered if so)."""
        with self.dialect.translate_errors():
            row = self.dialect.conn().execute(self.q["flow_is_limited"],
                                              {"name": queue}).fetchone()
        if row is not None and row["limited"]:
            self._limited.add(queue)
            return True
        return False

    def _claim_limited(self, queue: str, limit: int, visibility_timeout: float | None,
                       now: float, worker: str | None) -> list[Any] | None:
        """The limited claim, in one transaction holding the queue; None if the queue has no
        limits (any more)."""
        q = self.q
        with self.dialect.transaction() as conn:
            row = conn.execute(q["lock_queue"], {"name": queue}).fetchone()
            if row is None or not row["limited"]:
                return None
            if row["paused"]:
                return []
            limits = Limits.of(row)
            plan = self._plan(conn, row, limits, now, want=limit)
            rows: list[Any] = []
            if plan.ids:
                timeout = (row["visibility_timeout"] if visibility_timeout is None
                           else visibility_timeout)
                found = conn.execute(q["claim_chosen"], {
                    "ids": self.dialect.array(plan.ids), "now": now, "worker": worker,
                    "visibility_timeout": timeout, "max_attempts": row["max_attempts"],
                    "timeout": row["timeout"]})
                rows = [tuple(r[k] for k in r.keys()) for r in found]  # by position
            self._record(conn, row, limits, plan, claimed=len(rows), wanted=limit, now=now)
            return rows

    def _record(self, conn: Any, row: Any, limits: Limits, plan: Plan, *, claimed: int,
                wanted: int, now: float) -> None:
        """Store the rate states the claim moved on and count a claim a limit held back."""
        throttled = 1 if claimed < wanted and plan.held else 0
        tat = row["rate_tat"]
        if limits.rate is not None and claimed:
            tat = flow.advance(tat, now, limits.rate, claimed)
        if throttled or tat != row["rate_tat"]:
            conn.execute(self.q["flow_record"], {"queue": row["name"], "rate_tat": tat,
                                                 "throttled": throttled})
        if not claimed:
            return
        for key, (count, turn, group_tat) in plan.groups.items():
            if limits.group_rate is not None and key != DEFAULT_GROUP:
                group_tat = flow.advance(group_tat, now, limits.group_rate, count)
            conn.execute(self.q["flow_serve_group"], {"queue": row["name"], "group_key": key,
                                                      "turn": turn, "tat": group_tat})

    # -- planning ---------------------------------------------------------------------------

    def _plan(self, conn: Any, row: Any, limits: Limits, now: float, *, want: int) -> Plan:
        """Which jobs (at most ``want``) a claim may take now under the queue's limits."""
        queue = row["name"]
        plan = Plan()
        leases: list[Any] = []
        if limits.concurrency is not None or limits.group_concurrency is not None:
            leases = conn.execute(self.q["flow_live_leases"],
                                  {"queue": queue, "now": now}).fetchall()
        budget, wake_at = want, None
        if limits.concurrency is not None:
            free = limits.concurrency - len(leases)
            if free < budget:
                budget = max(free, 0)
                if free <= 0:
                    wake_at = min(lease["lease_expires_at"] for lease in leases)
        if limits.rate is not None:
            allowed = flow.allowance(row["rate_tat"], now, limits.rate)
            if allowed < budget:
                budget = allowed
                if allowed == 0:
                    wake_at = _earliest(wake_at,
                                        flow.next_allowed(row["rate_tat"], now, limits.rate))
        if limits.grouped:
            self._plan_groups(conn, row, limits, leases, now, budget, plan)
        else:
            found = conn.execute(self.q["flow_candidates"], {
                "queue": queue, "now": now, "max_attempts": row["max_attempts"],
                "limit": min(want, budget + 1)}).fetchall()
            plan.ids = [r["id"] for r in found[:budget]]
            plan.held = len(found) - len(plan.ids)
        if plan.held and budget < want:
            plan.wake(wake_at)
        return plan

    def _plan_groups(self, conn: Any, row: Any, limits: Limits, leases: Sequence[Any],
                     now: float, budget: int, plan: Plan) -> None:
        """Choose from each group's first jobs, in rotation (see the module docstring)."""
        k = limits.group_concurrency
        in_flight: dict[str, int] = defaultdict(int)
        lease_end: dict[str, float] = {}
        for lease in leases:
            key, end = lease["group_key"], lease["lease_expires_at"]
            if key is not None:
                in_flight[key] += 1
                lease_end[key] = min(lease_end.get(key, end), end)
        # Each group's head (and the job behind it), and its first claimable jobs among its
        # first k unfinished ones (all of them without a group concurrency), never more than
        # a claim may take of one group.
        need = max(1, budget if k is None else min(budget, k))
        if limits.group_rate is not None:
            need = min(need, limits.group_rate.count)
        params = {"queue": row["name"], "now": now, "max_attempts": row["max_attempts"],
                  "window": flow.MAX_LIMIT + 1 if k is None else k, "need": need}
        fronts: dict[str, list[Any]] = defaultdict(list)
        takes: dict[str, list[Any]] = defaultdict(list)
        for head in conn.execute(self.q["flow_group_heads"], params):
            (takes if head["part"] else fronts)[head["group_key"]].append(head)
        for head in conn.execute(self.q["flow_default_heads"],
                                 {**params, "need": max(1, budget)}):
            takes[DEFAULT_GROUP].append(head)
        candidates: list[tuple[Any, ...]] = []
        window = params["window"]
        for key in fronts.keys() | takes.keys():
            first = (fronts[key] or takes[key])[0]
            turn, tat = first["turn"], first["tat"]
            if window <= 2 and key != DEFAULT_GROUP:  # the window is within the front
                fronts[key].sort(key=lambda r: r["id"])
                takes[key] = [r for r in fronts[key][:window] if r["claimable"]]
            take = sorted(takes[key], key=lambda r: r["id"])
            if key != DEFAULT_GROUP:
                if k is not None:
                    free = max(k - in_flight[key], 0)
                    behind = len(fronts[key]) > k  # the job after the window waits its turn
                    if len(take) > free or behind:
                        plan.held += max(len(take) - free, 1)
                        if not free:
                            plan.wake(lease_end.get(key))
                    take = take[:free]
                    head = min(fronts[key], key=lambda r: r["id"], default=None)
                    if head is not None and not head["claimable"] and head["available_at"] > now:
                        plan.wake(head["available_at"])  # a delayed head holds its group
                if limits.group_rate is not None and take:
                    allowed = flow.allowance(tat, now, limits.group_rate)
                    if allowed < len(take):
                        plan.held += len(take) - allowed
                        take = take[:allowed]
                        if not take:
                            plan.wake(flow.next_allowed(tat, now, limits.group_rate))
            for rank, r in enumerate(take):
                # Priority first; then one job per group per round, the group served least
                # recently first (never served: first of all); then enqueue order.
                candidates.append((-r["priority"], rank, -1 if turn is None else turn,
                                   r["id"], key, tat))
        candidates.sort()
        chosen = candidates[:budget]
        plan.held += len(candidates) - len(chosen)
        plan.ids = [c[3] for c in chosen]
        last_turn = max((r["turn"] or 0 for rows in (*fronts.values(), *takes.values())
                         for r in rows), default=0)
        for number, (*_, key, tat) in enumerate(chosen, start=last_turn + 1):
            count = plan.groups[key][0] if key in plan.groups else 0
            plan.groups[key] = (count + 1, number, tat)

    # -- waiting and reading ----------------------------------------------------------------

    def flow_outlook(self, queue: str, now: float) -> tuple[bool, float | None] | None:
        """Whether a claim may take a job of a limited queue now and, if not, when its limits
        next let one go (None: only a commit can): ``(claimable, wake_at)``. None for a queue
        this process does not know to be limited. Read-only."""
        if queue not in self._limited:
            return None
        with self.dialect.snapshot() as conn:
            row = conn.execute(self.q["get_queue"], {"name": queue}).fetchone()
            if row is None or not row["limited"]:
                self._limited.discard(queue)
                return None
            if row["paused"]:
                return False, None
            plan = self._plan(conn, row, Limits.of(row), now, want=1)
        if plan.ids:
            return True, None
        due = self.next_available_at(queue)  # a delay or a backoff ends, a lease expires
        return False, _earliest(plan.wake_at, due if due is not None and due > now else None)

    def _stats_counts(self, conn: Any, now: float) -> dict[str, dict[str, Any]]:
        """The counts of :meth:`Reads.stats`, with each queue's throttled claims and, for a
        limited queue, the ready jobs its limits hold back now."""
        counts = super()._stats_counts(conn, now)
        for row in conn.execute(self.q["list_queues"]).fetchall():
            entry = counts.setdefault(row["name"], {})
            entry["throttled"] = row["throttled"]
            claimable = entry.get("ready_now", 0) + entry.get("expired", 0)
            if row["limited"] and not row["paused"] and claimable:
                plan = self._plan(conn, row, Limits.of(row), now,
                                  want=min(claimable, _PLAN_CAP))
                entry["held"] = claimable - len(plan.ids)
        return counts

    def _announce_limited(self, conn: Any) -> None:
        """Wake consumers held back by the limits of the queues this process claims from."""
        for name in sorted(self._limited):
            self.dialect.notify(conn, name)


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)
