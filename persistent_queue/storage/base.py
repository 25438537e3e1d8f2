"""The storage seam: what a backend must do for :class:`~persistent_queue.Queue`.

A backend receives values that :mod:`persistent_queue.queue` has already validated and the
caller's clock reading ``now``; it owns the transactions and the SQL. The SQLite backend is
the reference; every backend must pass the same contract tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ..models import (
    JSON,
    Alert,
    DeadLetter,
    DeletedQueue,
    Job,
    JobEvent,
    JobState,
    QueueInfo,
    QueueStats,
    RunningJob,
    ScheduleInfo,
    Subscription,
    ThroughputPoint,
    WorkerInfo,
)

#: What ``wait_for_change(queue=RESULTS)`` waits for: a job acked with a result, or a job
#: dead-lettered (never a queue's name: ``~`` is not allowed in one). ``Queue.result`` waits
#: on it; consumers waiting for work are not woken by results.
RESULTS = "~results"


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated job about to be stored."""

    payload: JSON
    payload_json: str
    headers: dict[str, JSON]
    headers_json: str | None
    priority: int
    available_at: float
    max_attempts: int | None
    dedup_key: str | None = None
    dedup_window: float = 0.0
    depends_on: tuple[int, ...] = ()
    timeout: float | None = None
    group_key: str | None = None


class Backend(ABC):
    """Storage for queues, jobs, leases and dead letters."""

    def atomic(self) -> AbstractContextManager[None]:
        """A block whose writes (by this thread) commit together or not at all."""
        raise NotImplementedError(f"{type(self).__name__} does not support atomic blocks")

    @abstractmethod
    def close(self) -> None:
        """Release every connection."""

    @abstractmethod
    def schema_version(self) -> int:
        """The schema version of the store."""

    @abstractmethod
    def quick_check(self) -> list[str]:
        """Structural problems found in the store (empty when it is sound)."""

    # queues
    @abstractmethod
    def create_queue(self, name: str, *, max_attempts: int, visibility_timeout: float,
                     max_size: int | None, exist_ok: bool, now: float,
                     timeout: float | None = None,
                     limits: dict[str, Any] | None = None) -> QueueInfo:
        """Create a queue; ``QueueAlreadyExists`` unless ``exist_ok``. ``limits``: flow
        control's columns (``concurrency``, ``rate_count``/``rate_period``, ``group_...``)
        and alert thresholds (``alert_...``), set only on a queue this call creates."""

    @abstractmethod
    def update_queue(self, name: str, changes: dict[str, Any], now: float) -> QueueInfo:
        """Change settings (max_attempts, visibility_timeout, max_size, paused, timeout)."""

    @abstractmethod
    def get_queue(self, name: str) -> QueueInfo | None:
        """A queue's settings, or None."""

    @abstractmethod
    def list_queues(self) -> list[QueueInfo]:
        """Every queue, by name."""

    @abstractmethod
    def delete_queue(self, name: str, *, force: bool) -> DeletedQueue:
        """Delete a queue with its jobs, dead letters, history, schedules and subscriptions.

        One transaction; the schedules are those that target the queue.
        """

    @abstractmethod
    def purge_queue(self, name: str) -> int:
        """Delete a queue's unfinished jobs; returns how many."""

    # jobs
    @abstractmethod
    def enqueue(self, queue: str, jobs: Sequence[NewJob], *, now: float,
                queue_defaults: tuple[int, float]) -> list[Job]:
        """Store jobs in one transaction, creating the queue with the defaults if needed."""

    def enqueue_uniform(self, queue: str, template: NewJob, payloads: Sequence[JSON],
                        payload_jsons: Sequence[str], *, now: float,
                        queue_defaults: tuple[int, float]) -> list[Job]:
        """Store jobs that share everything but their payload (``enqueue_many``).

        ``template`` holds the shared fields (its own payload is ignored); ``payloads`` and
        ``payload_jsons`` are the values and their encoded texts. The default builds one
        ``NewJob`` per payload; a backend may store the batch more cheaply.
        """
        jobs = [
            NewJob(payload, text, dict(template.headers), template.headers_json,
                   template.priority, template.available_at, template.max_attempts,
                   timeout=template.timeout)
            for payload, text in zip(payloads, payload_jsons, strict=True)
        ]
        return self.enqueue(queue, jobs, now=now, queue_defaults=queue_defaults)

    @abstractmethod
    def claim(self, queue: str, *, limit: int, visibility_timeout: float | None,
              now: float, worker: str | None = None) -> list[Job]:
        """Atomically lease up to ``limit`` claimable jobs (new token each, attempts + 1) for
        ``worker`` (stored as ``claimed_by``, with ``started_at = now``; progress cleared)."""

    @abstractmethod
    def has_claimable(self, queue: str, now: float) -> bool:
        """Whether a claim might find a job now (read-only)."""

    @abstractmethod
    def next_available_at(self, queue: str) -> float | None:
        """The earliest time an unfinished job of the queue becomes claimable."""

    def flow_outlook(self, queue: str, now: float) -> tuple[bool, float | None] | None:
        """For a queue with limits (flow control): ``(claimable now, when its limits next
        let a job go)``; None for a queue without limits (the default: no backend limits)."""
        return None

    @abstractmethod
    def wait_for_change(self, timeout: float, poll_interval: float,
                        queue: str | None = None) -> bool:
        """Block until the store changes or ``timeout`` passes; True if it changed.

        ``queue`` is a hint: the caller only cares about work for that queue. A backend may
        ignore it (and wake on any change), but must never sleep through a change to it.
        """

    @abstractmethod
    def ack(self, job_id: int, token: str, now: float, result_json: str | None = None) -> None:
        """Mark a leased job done; ``LeaseLost`` if the token is not current.

        ``result_json`` (already encoded and size-checked JSON text) is stored as the job's
        result by the same statement that marks it done: a result is never stored for an ack
        that fails, and never missing from one that succeeds.
        """

    def ack_many(self, leases: Sequence[tuple[int, str]], now: float) -> None:
        """Mark many leased jobs done, all or none; ``LeaseLost`` names the first stale one.

        This default acks one by one (not atomic); backends override it with one transaction.
        """
        for job_id, token in leases:
            self.ack(job_id, token, now)

    @abstractmethod
    def nack(self, job_id: int, token: str, *, error: str | None, delay: float | None,
             backoff: Callable[[int], float], now: float,
             dead_letter_reason: str | None = None) -> Job | DeadLetter:
        """Fail an attempt: back to ready after a delay, or dead-letter when exhausted (with
        ``dead_letter_reason``, else "failed N of M attempts")."""

    @abstractmethod
    def requeue(self, job_id: int, token: str, *, delay: float, now: float) -> Job:
        """Give a leased job back without counting the attempt."""

    @abstractmethod
    def extend(self, job_id: int, token: str, *, seconds: float, now: float) -> Job:
        """Move the lease's end to ``now + seconds``."""

    @abstractmethod
    def dead_letter(self, job_id: int, token: str | None, *, reason: str, error: str | None,
                    now: float) -> DeadLetter:
        """Move a job to the dead-letter table (fenced when ``token`` is given)."""

    @abstractmethod
    def reap_expired(self, now: float) -> int:
        """Dead-letter jobs whose lease expired on their last attempt, and cancel jobs whose
        lease expired after their cancellation was requested."""

    # control of jobs
    @abstractmethod
    def cancel(self, job_id: int, *, reason: str | None, now: float) -> Job:
        """Cancel a job: at once unless it runs under a live lease (then the request is
        recorded for its worker). ``InvalidJobState`` for a finished or dead-lettered job."""

    @abstractmethod
    def confirm_cancel(self, job_id: int, token: str, *, now: float) -> Job:
        """The lease holder stopped the job after a cancel request: it is cancelled."""

    @abstractmethod
    def cancel_requests(self, job_ids: Sequence[int]) -> set[int]:
        """Which of ``job_ids`` have their cancellation requested (read-only)."""

    @abstractmethod
    def set_progress(self, job_id: int, token: str, *, fraction: float, message: str | None,
                     seconds: float | None, now: float) -> Job:
        """Store a running job's progress and renew its lease to at least ``seconds`` (else
        the queue's visibility timeout) from now (fenced)."""

    @abstractmethod
    def delete_job(self, job_id: int, *, now: float) -> None:
        """Delete a job that is not leased, with its history; its waiting dependents are
        dead-lettered."""

    @abstractmethod
    def retry_now(self, job_id: int, *, now: float) -> Job:
        """Make a delayed or backing-off ready job claimable now."""

    @abstractmethod
    def edit_dead_letter(self, job_id: int, changes: dict[str, Any]) -> DeadLetter:
        """Change a dead letter's payload, headers or priority (already validated and
        encoded: ``payload``/``headers`` as JSON text)."""

    @abstractmethod
    def dead_letters(self, queue: str | None, *, limit: int, offset: int) -> list[DeadLetter]:
        """Dead letters, newest first."""

    @abstractmethod
    def redrive(self, job_id: int | None, queue: str | None, *, now: float,
                queue_defaults: tuple[int, float]) -> list[int]:
        """Move dead letters back to ready with attempts reset; returns their ids."""

    @abstractmethod
    def purge_dead_letters(self, queue: str | None, *, before: float) -> int:
        """Delete dead letters that died before ``before``."""

    @abstractmethod
    def get_job(self, job_id: int) -> Job:
        """A job by id (dead-lettered ones with state DEAD); ``JobNotFound`` otherwise."""

    @abstractmethod
    def list_jobs(self, queue: str | None, *, state: JobState | None, headers: dict[str, Any],
                  limit: int, offset: int, newest_first: bool) -> list[Job]:
        """Live jobs filtered by queue, state and header values."""

    @abstractmethod
    def history(self, job_id: int) -> list[JobEvent]:
        """A job's timeline, oldest first: its stored events with the enqueue, claims and
        ack read from its row and the events' run times."""

    @abstractmethod
    def stats(self, now: float) -> dict[str, QueueStats]:
        """Counts by state for every queue."""

    @abstractmethod
    def cleanup(self, *, before: float, queue: str | None, batch: int, vacuum: bool,
                results_before: float | None = None) -> int:
        """Delete done jobs finished before ``before``, and (with ``results_before``) done
        jobs holding a result finished before ``results_before``; returns how many."""

    @abstractmethod
    def dependency_results(self, job_id: int) -> dict[int, JSON]:
        """``{parent_id: result}`` for every job ``job_id`` depends on (None for a parent
        acked without a result, not finished, dead-lettered or already cleaned up)."""

    # processes and housekeeping values
    @abstractmethod
    def register_worker(self, worker_id: str, *, kind: str, host: str, pid: int,
                        queues: list[str], now: float) -> None:
        """Record a process as running (re-registering the same id restarts it)."""

    @abstractmethod
    def heartbeat_worker(self, worker_id: str, *, processed: int, failed: int,
                         now: float) -> bool:
        """Record that a process is alive, adding to its processed/failed counts; False if
        no such process is registered (it was pruned)."""

    @abstractmethod
    def stop_worker(self, worker_id: str, now: float) -> None:
        """Record a clean exit."""

    @abstractmethod
    def workers(self, *, stale_before: float) -> list[WorkerInfo]:
        """Every registered process; running ones silent since ``stale_before`` are shown
        ``lost`` (read so, never stored)."""

    @abstractmethod
    def prune_workers(self, *, before: float, stale_before: float) -> int:
        """Forget stopped workers, and lost ones (running, silent since ``stale_before``),
        last heard of before ``before``; returns how many."""

    @abstractmethod
    def running_jobs(self, queue: str | None, *, limit: int, now: float) -> list[RunningJob]:
        """Jobs whose lease is live at ``now`` (of one queue or all), longest running first."""

    @abstractmethod
    def alerts(self, now: float, *, failures_since: float) -> list[Alert]:
        """Every alert a queue has a threshold for, measured at one moment (failure rates over
        the attempts ended since ``failures_since``)."""

    @abstractmethod
    def kv_get(self, key: str) -> str | None:
        """A stored value, or None."""

    @abstractmethod
    def kv_set(self, key: str, value: str, now: float) -> None:
        """Store a value durably."""

    @abstractmethod
    def kv_compare_and_set(self, key: str, expected: str | None, value: str,
                           now: float) -> bool:
        """Store ``value`` only if the stored value is still ``expected`` (None: no value is
        stored); False, changing nothing, if it is not. Inside ``atomic()`` a concurrent
        writer of the key is waited for, then compared against."""

    @abstractmethod
    def throughput(self, *, since: float, bucket: float) -> list[ThroughputPoint]:
        """Per-queue counts of enqueued/acked/failed/dead jobs in time buckets since ``since``."""

    # workflows (see sqlite_workflows.py for the SQLite implementation)
    @abstractmethod
    def count_rejected_full(self, queue: str) -> None:
        """Count an enqueue that a bounded queue refused."""

    @abstractmethod
    def subscribe(self, topic: str, queue: str, now: float) -> bool:
        """Subscribe a queue to a topic; False if it already was."""

    @abstractmethod
    def unsubscribe(self, topic: str, queue: str) -> bool:
        """Remove a subscription; False if there was none."""

    @abstractmethod
    def subscriptions(self, topic: str | None) -> list[Subscription]:
        """Subscriptions (of one topic or all), by topic and queue."""

    @abstractmethod
    def publish(self, topic: str, job: NewJob, *, now: float,
                queue_defaults: tuple[int, float]) -> list[Job]:
        """Enqueue one copy of the job into every subscribed queue in one transaction."""

    @abstractmethod
    def upsert_schedule(self, schedule: ScheduleInfo, *, keep_next_run: bool) -> ScheduleInfo:
        """Create or replace a schedule; an unchanged one keeps its next tick if asked."""

    @abstractmethod
    def delete_schedule(self, name: str) -> bool:
        """Delete a schedule; False if there was none."""

    @abstractmethod
    def get_schedule(self, name: str) -> ScheduleInfo | None:
        """A schedule by name, or None."""

    @abstractmethod
    def list_schedules(self) -> list[ScheduleInfo]:
        """Every schedule, by name."""

    @abstractmethod
    def due_schedules(self, now: float) -> list[str]:
        """Names of schedules whose next tick is at or before ``now``."""

    @abstractmethod
    def next_schedule_at(self) -> float | None:
        """The earliest next tick of any schedule."""

    @abstractmethod
    def fire_schedule(self, name: str, *, now: float,
                      advance: Callable[[ScheduleInfo, float], tuple[float | None, int]],
                      queue_defaults: tuple[int, float]) -> Job | None:
        """Enqueue the schedule's job for its due tick and move to the next tick, atomically.

        ``advance(schedule, now)`` returns the next tick after ``now`` and how many ticks were
        skipped; no next tick finishes the schedule (``finished_at``), which is never due
        again. Returns None when the tick is not due (another scheduler fired it, or it is
        finished).
        """

    @abstractmethod
    def database_facts(self, *, integrity: bool = False) -> dict[str, Any]:
        """Engine facts for health checks: version and settings, and with ``integrity`` the
        result of a full integrity check (``"ok"`` or the problems found)."""
        raise NotImplementedError(f"{type(self).__name__} does not report database facts")
