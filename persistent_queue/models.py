"""The values the library hands out: jobs, dead letters, queues and their statistics."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

JSON = Any
"""A decoded JSON value (dict, list, str, int, float, bool or None)."""


class JobState(StrEnum):
    """Where a job is in its life.

    ``waiting`` -> ``ready`` (its dependencies are done) -> ``leased`` (a consumer holds it)
    -> ``done`` (acked). A nack or an expired lease returns it to ``ready`` until its attempts
    are used up; then it is ``dead`` (in the dead-letter table). ``cancelled`` is terminal
    like ``done``: an operator cancelled it (a leased job once its worker stopped it).
    """

    WAITING = "waiting"
    READY = "ready"
    LEASED = "leased"
    DONE = "done"
    DEAD = "dead"
    CANCELLED = "cancelled"


class Progress(NamedTuple):
    """How far a running job has come, as its handler last said (``Job.progress``)."""

    #: Between 0 and 1.
    fraction: float
    #: The handler's words with it, if any.
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored. Frozen: every operation returns a new ``Job``.

    ``lease_token`` is set only on the copy returned by a claim (``dequeue``); it is what
    proves to ``ack``/``nack``/``extend``/``requeue`` that the caller holds the lease.

    Attributes:
        id: The job's id, unique in the database.
        queue: The name of the queue the job is in.
        payload: The job's body: any JSON value.
        headers: String keys with JSON scalar values, for routing and filtering.
        priority: Higher runs first; equal priorities run oldest first.
        state: Where the job is in its life: waiting, ready, leased, done, cancelled or
            dead.
        attempts: How many times the job has been claimed (a requeue gives one back).
        max_attempts: Attempts allowed before the job is dead-lettered (its own, else its
            queue's).
        lease_token: Proves to ack, nack, extend and requeue that the caller holds the lease;
            set only on the response to a claim.
        lease_expires_at: When the current lease ends (epoch seconds); null unless leased.
        created_at: When the job was stored (epoch seconds).
        available_at: When the job may next be claimed (epoch seconds): after a delay or a
            retry's backoff.
        updated_at: When the job last changed (epoch seconds).
        finished_at: When the job was acked or cancelled (epoch seconds); null until then.
        last_error: The error of the latest failed attempt, if any.
        dedup_key: The job's deduplication key, if it was given one.
        deduplicated: True when an enqueue returned this existing job because of its dedup
            key instead of storing a new one.
        depends_on: Ids of the jobs that must be acked before this one becomes ready.
        result: What the job's task returned (any JSON value), stored by the ack that
            finished it; null until then, for a job acked without a result, and once the
            done job is cleaned up (after the queue's result_ttl).
        timeout: Seconds an attempt may run before its worker stops it and the attempt
            fails (the job's own, else its queue's); null for no limit.
        started_at: When the current or last attempt was claimed (epoch seconds); null if
            never claimed.
        claimed_by: The worker that claimed the current or last attempt; null if never
            claimed.
        progress: How far the running attempt has come, as its handler last said: fraction
            (0 to 1) and message; null until the handler reports (each claim clears it).
        cancel_requested: True once cancellation was requested (a leased job's worker then
            stops it; the job ends cancelled).
        cancel_reason: The reason given with the cancellation, if any.
        group_key: The job's group (flow control): on a queue with group limits, jobs of one
            group run in enqueue order within the group's limits; null for none.
    """

    id: int
    queue: str
    payload: JSON
    headers: dict[str, JSON]
    priority: int
    state: JobState
    attempts: int
    max_attempts: int
    lease_token: str | None
    lease_expires_at: float | None
    created_at: float
    available_at: float
    updated_at: float
    finished_at: float | None = None
    last_error: str | None = None
    dedup_key: str | None = None
    deduplicated: bool = False
    depends_on: tuple[int, ...] = field(default=())
    result: JSON = None
    timeout: float | None = None
    started_at: float | None = None
    claimed_by: str | None = None
    progress: Progress | None = None
    cancel_requested: bool = False
    cancel_reason: str | None = None
    group_key: str | None = None

    @property
    def run_time(self) -> float | None:
        """Seconds the last attempt ran, for a job that finished running (acked, or cancelled
        while it ran); None otherwise."""
        if self.finished_at is None or self.started_at is None:
            return None
        if self.state is not JobState.DONE and self.state is not JobState.CANCELLED:
            return None
        return max(0.0, self.finished_at - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (state as its string value; ``progress`` as
        ``{"fraction": ..., "message": ...}`` or null; ``run_time`` added)."""
        # As dataclasses.asdict, 5x cheaper: the fields one by one, JSON containers copied.
        data = {name: getattr(self, name) for name in _JOB_FIELDS}
        data["payload"] = _copied(self.payload)
        data["headers"] = dict(self.headers)  # scalar values
        data["result"] = _copied(self.result)
        data["state"] = self.state.value
        data["depends_on"] = list(self.depends_on)
        data["progress"] = None if self.progress is None else self.progress._asdict()
        data["run_time"] = self.run_time
        return data


def _copied(value: JSON) -> JSON:
    """A JSON value that shares no list or dict with ``value``."""
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


_JOB_FIELDS = tuple(item.name for item in dataclasses.fields(Job))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A job in the dead-letter table, with why and when it got there.

    Attributes:
        id: The id the job had (a redrive returns it to its queue under this id).
        queue: The name of the queue the job came from.
        payload: The job's body: any JSON value.
        headers: The job's headers: string keys with JSON scalar values.
        priority: The job's priority (higher runs first).
        attempts: How many attempts the job had used.
        max_attempts: The job's own attempt limit; null when it used its queue's.
        reason: Why the job was dead-lettered (attempts used up, an expired last lease, or
            an operator's reason).
        last_error: The error of the job's last failed attempt, if any.
        created_at: When the job was first stored (epoch seconds).
        dead_at: When the job was dead-lettered (epoch seconds).
        timeout: The job's own run-time limit in seconds (kept by a redrive); null when it
            used its queue's.
        group_key: The job's group (a redrive returns it to that group); null for none.
    """

    id: int
    queue: str
    payload: JSON
    headers: dict[str, JSON]
    priority: int
    attempts: int
    max_attempts: int | None
    reason: str
    last_error: str | None
    created_at: float
    dead_at: float
    timeout: float | None = None
    group_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One line of a job's history, from its enqueue to its end.

    Stored events: failed, lease_expired, cancel_requested, cancelled, dead_lettered and
    redriven. ``enqueued``, each ``claimed`` and ``acked`` are read from the job's row and
    from the run times of the stored events (no row is written per claim or ack).

    Attributes:
        job_id: The id of the job the event happened to.
        queue: The queue the job was in at the time.
        at: When it happened (epoch seconds).
        event: What happened: enqueued, claimed, failed, lease_expired, cancel_requested,
            cancelled, acked, dead_lettered or redriven.
        attempt: The job's attempt count at the time (0 for a redrive), if known.
        detail: The error or the reason given, if any.
        worker: The worker that ran the attempt (claimed, failed, lease_expired, cancelled,
            acked), if known.
        run_time: Seconds the attempt had run when it ended (failed, cancelled, acked; for
            lease_expired, until the expiry was noticed); null for other events.
    """

    job_id: int
    queue: str
    at: float
    event: str
    attempt: int | None
    detail: str | None
    worker: str | None = None
    run_time: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue's settings.

    Attributes:
        name: The queue's name.
        max_attempts: Attempts a job of this queue gets before it is dead-lettered, unless
            the job sets its own.
        visibility_timeout: How long a claim's lease lasts, in seconds, unless the claim asks
            for another.
        max_size: The most unfinished jobs the queue holds (enqueues beyond it are refused);
            null for no bound.
        paused: True while consumers may not claim from the queue (enqueues still work).
        created_at: When the queue was created (epoch seconds).
        updated_at: When its settings last changed (epoch seconds).
        timeout: Seconds an attempt of its jobs may run before it is stopped, unless the job
            sets its own; null for no limit.
        concurrency: The most jobs of the queue leased at once, across every consumer; null
            for no limit.
        rate_limit: The most claims per period across every consumer, e.g. "50/s" (a burst of
            50, then one every 20 ms); null for no limit.
        group_concurrency: The most jobs of one group leased at once; a group's jobs start
            in enqueue order (1: one at a time, in order); null for no limit.
        group_rate_limit: The most claims per period of one group, e.g. "5/s"; null for no
            limit.
        alert_depth: The depth alert's threshold: jobs ready now; null for no such alert.
        alert_oldest_age: The age alert's threshold: seconds the oldest ready job has
            waited; null for no such alert.
        alert_failure_rate: The failure-rate alert's threshold, above 0 and at most 1: the
            share of attempts ended in the last 15 minutes that failed; null for none.
        alert_dead_letters: The dead-letter alert's threshold: jobs of the queue in the
            dead-letter table; null for no such alert.
    """

    name: str
    max_attempts: int
    visibility_timeout: float
    max_size: int | None
    paused: bool
    created_at: float
    updated_at: float
    timeout: float | None = None
    concurrency: int | None = None
    rate_limit: str | None = None
    group_concurrency: int | None = None
    group_rate_limit: str | None = None
    alert_depth: int | None = None
    alert_oldest_age: float | None = None
    alert_failure_rate: float | None = None
    alert_dead_letters: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """How many jobs a queue holds in each state, at one moment.

    ``ready`` counts jobs claimable now; ``scheduled`` ready jobs whose time has not come
    (delayed or backing off); ``expired`` leased jobs whose lease ran out (claimable again).
    ``waiting`` jobs wait for their dependencies; ``dedup_hits`` counts enqueues answered with
    an existing job (same dedup key); ``rejected_full`` enqueues refused by ``max_size``.

    Attributes:
        queue: The queue's name.
        waiting: Jobs waiting for their dependencies to be acked.
        ready: Jobs that may be claimed now.
        scheduled: Ready jobs whose time has not come yet (delayed or backing off).
        leased: Jobs held by a consumer whose lease has not run out.
        expired: Leased jobs whose lease ran out (claimable again).
        done: Acked jobs not yet cleaned up.
        dead: Jobs of this queue in the dead-letter table.
        cancelled: Cancelled jobs not yet cleaned up.
        paused: True while consumers may not claim from the queue.
        oldest_ready_age: Seconds the oldest claimable job has waited; null if none.
        retries: Failed attempts and expired leases in the queue's history (all time, until
            cleanup removes the jobs).
        retry_pending: Ready jobs that failed an attempt (or lost a lease) and wait for their
            retry, now or after their backoff.
        dedup_hits: Enqueues answered with an existing job (same dedup key).
        rejected_full: Enqueues refused because the queue was at its max_size.
        throttled: Claims that found jobs ready but got fewer (or none) because of the
            queue's limits (concurrency, rate or a group's), since the queue was created.
        held: Jobs ready now that the queue's limits hold back now (throttled now).
    """

    queue: str
    waiting: int = 0
    ready: int = 0
    scheduled: int = 0
    leased: int = 0
    expired: int = 0
    done: int = 0
    dead: int = 0
    paused: bool = False
    oldest_ready_age: float | None = None
    retries: int = 0
    dedup_hits: int = 0
    rejected_full: int = 0
    cancelled: int = 0
    throttled: int = 0
    held: int = 0
    retry_pending: int = 0

    @property
    def pending(self) -> int:
        """Jobs not yet finished: waiting, ready, scheduled and leased."""
        return self.waiting + self.ready + self.scheduled + self.leased

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with ``pending`` included."""
        data = dataclasses.asdict(self)
        data["pending"] = self.pending
        return data


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A registered producer or consumer process and its last heartbeat.

    ``state`` is ``running``, ``stopped`` (it said goodbye) or ``lost`` (it never said goodbye
    and its heartbeat stopped: killed, crashed, or its host is gone).

    Attributes:
        id: The worker's id, unique per process run.
        kind: What the process is: producer, consumer or scheduler.
        host: The host name the process runs on.
        pid: The process id on that host.
        queues: The queues the process works on.
        state: running, stopped (it said goodbye) or lost (its heartbeat stopped without a
            goodbye).
        started_at: When the process registered (epoch seconds).
        heartbeat_at: When the process last said it was alive (epoch seconds).
        stopped_at: When the process said goodbye (epoch seconds); null while it has not.
        processed: Jobs the process handled successfully.
        failed: Jobs the process failed.
    """

    id: str
    kind: str
    host: str
    pid: int
    queues: list[str]
    state: str
    started_at: float
    heartbeat_at: float
    stopped_at: float | None
    processed: int
    failed: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


#: The kinds of alert a queue may have, in the order they are listed.
ALERT_KINDS = ("depth", "oldest_age", "failure_rate", "dead_letters")


@dataclass(frozen=True, slots=True)
class Alert:
    """One of a queue's alerts, compared with the queue's state at one moment.

    A queue has an alert of each kind whose threshold is set (``QueueInfo.alert_*``); it fires
    when its value reaches the threshold.

    Attributes:
        queue: The queue's name.
        kind: "depth" (jobs ready now), "oldest_age" (seconds the oldest ready job has
            waited), "failure_rate" (failed share of the attempts ended in the last
            ``config.ALERT_FAILURE_WINDOW`` seconds: failed / (acked + failed), failed
            counting failed attempts and expired leases; 0 without any) or "dead_letters"
            (jobs in the dead-letter table).
        value: The measured value.
        threshold: The queue's threshold for this kind.
        firing: True when the value is at or above the threshold.
    """

    queue: str
    kind: str
    value: float
    threshold: float
    firing: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job running now: leased, its lease live.

    Attributes:
        id: The job's id.
        queue: The queue's name.
        task: The task's name (the job's "task" header); null for a plain job.
        worker: The worker that claimed it (``claimed_by``); null if the claim named none.
        started_at: When the current attempt was claimed (epoch seconds).
        running_for: Seconds since then, at the moment of the read.
        progress: How far the handler says it has come (0 to 1); null if it has not said.
        progress_message: The handler's words with its progress, if any.
        attempt: Which attempt this is (1 for the first).
        lease_expires_at: When the lease ends unless renewed (epoch seconds).
        cancel_requested: True once a cancellation was asked for (its worker stops it).
    """

    id: int
    queue: str
    task: str | None
    worker: str | None
    started_at: float | None
    running_for: float | None
    progress: float | None
    progress_message: str | None
    attempt: int
    lease_expires_at: float
    cancel_requested: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class ThroughputPoint:
    """Jobs enqueued, acked, failed and dead-lettered in one queue during one time bucket.

    Attributes:
        queue: The queue's name.
        bucket: When the time bucket starts (epoch seconds).
        enqueued: Jobs enqueued during the bucket.
        acked: Jobs acked during the bucket.
        failed: Failed attempts during the bucket.
        dead: Jobs dead-lettered during the bucket.
    """

    queue: str
    bucket: float
    enqueued: int = 0
    acked: int = 0
    failed: int = 0
    dead: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A queue that receives a copy of every job published to a topic.

    Attributes:
        topic: The topic's name.
        queue: The name of the queue that receives the copies.
        created_at: When the queue subscribed (epoch seconds).
    """

    topic: str
    queue: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A recurring job: ``every`` seconds or on a ``cron`` expression (one of the two).

    ``next_run_at`` is the next tick; ``runs`` counts fired ticks and ``missed`` ticks that
    were folded into a later one because no scheduler ran at the time. ``finished_at`` is set
    when a cron expression has run out of ticks (``next_run_at`` is then its last tick, fired).

    Attributes:
        name: The schedule's name.
        queue: The queue each tick enqueues a job into.
        payload: The payload of each job: any JSON value.
        headers: The headers of each job.
        priority: The priority of each job (higher runs first).
        max_attempts: The attempt limit of each job; null for the queue's.
        every: Seconds between ticks; null for a cron schedule.
        cron: The cron expression of the ticks; null for an interval schedule.
        timezone: The time zone the cron expression is read in.
        next_run_at: The next tick (epoch seconds); once finished, its last tick (fired).
        last_run_at: When the schedule last fired (epoch seconds); null if never.
        last_job_id: The id of the job the last tick enqueued; null if none.
        runs: Ticks fired.
        missed: Ticks folded into a later one because no scheduler ran at the time.
        created_at: When the schedule was created (epoch seconds).
        updated_at: When the schedule last changed or fired (epoch seconds).
        finished_at: When a cron expression ran out of ticks (epoch seconds): the schedule
            never fires again; null while it has ticks to come.
    """

    name: str
    queue: str
    payload: JSON
    headers: dict[str, JSON]
    priority: int
    max_attempts: int | None
    every: float | None
    cron: str | None
    timezone: str
    next_run_at: float
    last_run_at: float | None
    last_job_id: int | None
    runs: int
    missed: int
    created_at: float
    updated_at: float
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        """True once the schedule has no tick left (it never fires again)."""
        return self.finished_at is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class DeletedQueue:
    """A deleted queue, with the schedules and subscriptions that went with it.

    ``schedules`` names the schedules that targeted the queue and ``topics`` the topics it was
    subscribed to (both sorted): left behind, either would have recreated the queue.
    """

    name: str
    schedules: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()

    def summary(self) -> str:
        """``"with its schedule 'nightly' and its subscription to topic 'orders'"``, or ``""``."""
        parts = []
        if self.schedules:
            noun = "schedule" if len(self.schedules) == 1 else "schedules"
            parts.append(f"its {noun} {_quoted(self.schedules)}")
        if self.topics:
            noun = "subscription to topic" if len(self.topics) == 1 else "subscriptions to topics"
            parts.append(f"its {noun} {_quoted(self.topics)}")
        return "with " + " and ".join(parts) if parts else ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"name": self.name, "schedules": list(self.schedules), "topics": list(self.topics)}


def _quoted(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{name}'" for name in names)
