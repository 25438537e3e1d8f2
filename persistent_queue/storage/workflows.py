"""Workflows, written once for every dialect: dependencies, dedup keys, bounded queues, topics,
schedules, and the steps every transition shares (events, dead-lettering and its cascade).

:class:`Workflows` is the second layer of :class:`~.core.SQLBackend`, above :class:`~.reads.Reads`.
The default enqueue (no key, no dependencies, unbounded queue) never reaches this module.

SQLite runs one writer at a time; PostgreSQL runs writers side by side under READ COMMITTED,
where each statement sees what had committed when it began. Each invariant therefore rests on
a row lock (the ``lock_*`` statements: ``FOR UPDATE``/``FOR SHARE`` on PostgreSQL, plain reads on
SQLite, whose write transaction already holds the database), taken queue by queue in name
order and in this order within a queue (so enqueues, publishes and schedules cannot deadlock):

1. bounded queues and dedup keys: the queue's row, taken by the caller of ``_enqueue_workflow``
   (``enqueue``, ``publish``, ``fire_schedule``). Counting and inserting are serialised, so
   concurrent enqueues never exceed ``max_size``, and a key stores exactly one job;
2. dependencies: the parents' rows, share-locked in id order; an ack or a dead-lettering of a
   parent waits for the new job's edges to commit (the release trigger then sees them);
3. schedules: the schedule's row; a second scheduler waits for the first to commit, then finds
   the tick moved on; the compare-and-set on ``next_run_at`` backs it up;
4. a queue's deletion: its schedules' and subscriptions' rows before the queue's row, the
   order in which a tick and a publish take them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import InvalidDependency, NoSubscribers, QueueFull, QueueNotFound
from ..models import DeadLetter, DeletedQueue, Job, JobState, QueueInfo, ScheduleInfo, Subscription
from .base import RESULTS, NewJob
from .reads import Reads
from .rows import dead_letter_from_row, job_from_row, queue_from_row, schedule_from_row

DEPENDENCY_FAILED = "dependency failed"
DEPENDENCY_CANCELLED = "dependency cancelled"


class Workflows(Reads):
    """Workflow operations and the shared steps of transitions (see the module docstring)."""

    # -- steps inside a transaction ---------------------------------------------------------

    def _event(self, conn: Any, job_id: int, queue: str, event: str, attempt: int | None,
               detail: str | None, now: float, *, worker: str | None = None,
               run_time: float | None = None) -> None:
        """Record one event; ``worker`` and ``run_time`` for one that ends an attempt (the
        history reads that attempt's claim from them)."""
        conn.execute(self.q["insert_event"], {"job_id": job_id, "queue": queue, "event": event,
                                              "attempt": attempt, "detail": detail, "now": now,
                                              "worker": worker, "run_time": run_time})

    def _queue_row(self, conn: Any, name: str, *, lock: bool = False) -> QueueInfo:
        row = conn.execute(self.q["lock_queue" if lock else "get_queue"],
                           {"name": name}).fetchone()
        if row is None:
            raise QueueNotFound(f"no queue named {name!r}")
        return queue_from_row(row)

    def _ensure_queue(self, conn: Any, name: str, defaults: tuple[int, float],
                      now: float) -> QueueInfo:
        row = conn.execute(self.q["get_queue"], {"name": name}).fetchone()
        if row is None:
            max_attempts, visibility_timeout = defaults
            conn.execute(self.q["ensure_queue"], {
                "name": name, "max_attempts": max_attempts,
                "visibility_timeout": visibility_timeout, "now": now,
            })
            row = conn.execute(self.q["get_queue"], {"name": name}).fetchone()
        assert row is not None, "the queue was just created"
        return queue_from_row(row)

    def _locked_queue(self, conn: Any, name: str, job: NewJob, defaults: tuple[int, float],
                      now: float) -> QueueInfo:
        """The queue (created if need be), its row locked if ``job`` needs the lock."""
        info = self._ensure_queue(conn, name, defaults, now)
        if info.max_size is not None or job.dedup_key is not None:
            info = self._queue_row(conn, name, lock=True)
        return info

    def _dead_letter(self, conn: Any, job_id: int, queue: str, reason: str, error: str | None,
                     attempts: int, now: float, *, worker: str | None = None,
                     run_time: float | None = None) -> DeadLetter:
        letter = conn.execute(self.q["insert_dead_letter"], {
            "id": job_id, "reason": reason, "error": error, "now": now}).fetchone()
        assert letter is not None, "the job's row is held by this transaction"
        conn.execute(self.q["delete_job"], {"id": job_id})
        self._event(conn, job_id, queue, "dead_lettered", attempts, reason, now,
                    worker=worker, run_time=run_time)
        self.dialect.notify(conn, RESULTS)  # a Queue.result waiting for it raises TaskFailed
        self.dialect.notify(conn, queue)  # its slot and its group's turn are free (limits)
        self._after_dead_letter(conn, job_id, now)
        return dead_letter_from_row(letter)

    # -- dependency cascades ----------------------------------------------------------------

    def _after_dead_letter(self, conn: Any, job_id: int, now: float) -> None:
        """Dead-letter every job waiting for ``job_id``, transitively."""
        self._end_dependents(conn, job_id, DEPENDENCY_FAILED,
                             f"job {job_id} it depends on was dead-lettered", now)

    def _end_dependents(self, conn: Any, parent: int, reason: str, detail: str,
                        now: float) -> None:
        """Dead-letter the jobs waiting for ``parent`` with ``reason``, and theirs in turn
        with "dependency failed". A level is done before the next begins (a dead-lettering
        inside the cascade leaves its dependents to the outer loop), so a job that waits
        for two of them (a diamond) is dead-lettered once."""
        local = self.dialect._local
        pending = getattr(local, "cascade", None)
        if pending is not None:  # already inside a cascade: let the outer loop handle it
            pending.append(parent)
            return
        pending = local.cascade = []
        try:
            self._fail_dependents(conn, parent, reason, detail, now)
            while pending:
                job_id = pending.pop()
                self._fail_dependents(conn, job_id, DEPENDENCY_FAILED,
                                      f"job {job_id} it depends on was dead-lettered", now)
        finally:
            local.cascade = None

    def _fail_dependents(self, conn: Any, parent: int, reason: str, detail: str,
                         now: float) -> None:
        """Dead-letter the jobs waiting for ``parent`` with ``reason`` (theirs in turn with
        "dependency failed", transitively)."""
        for row in conn.execute(self.q["waiting_dependents"], {"id": parent}).fetchall():
            self._dead_letter(conn, row["id"], row["queue"], reason, detail, row["attempts"],
                              now)

    def _after_redrive(self, conn: Any, job_id: int, now: float) -> None:
        """A redriven job waits for unfinished dependencies; its dead dependents come back."""
        q = self.q
        conn.execute(q["lock_parents_of"], {"id": job_id})  # an ack of one waits for us
        conn.execute(q["forget_cancelled_parents"], {"id": job_id})  # run without them
        unmet = conn.execute(q["unmet_dependencies"], {"id": job_id}).fetchone()
        if unmet["unmet"]:
            conn.execute(q["make_waiting"], {"id": job_id, "now": now})
        pending = [job_id]
        while pending:
            parent = pending.pop()
            for row in conn.execute(q["dead_dependents"], {"id": parent}).fetchall():
                conn.execute(q["lock_parents_of"], {"id": row["id"]})
                if conn.execute(q["unmet_dependencies"], {"id": row["id"]}).fetchone()["dead"]:
                    continue  # another of its dependencies is still dead
                conn.execute(q["restore_waiting"], {"id": row["id"], "now": now})
                conn.execute(q["delete_dead_letter"], {"id": row["id"]})
                self._event(conn, row["id"], row["queue"], "redriven", 0,
                            f"job {parent} it depends on was redriven", now)
                pending.append(row["id"])

    # -- enqueue with workflow options ------------------------------------------------------

    def _enqueue_workflow(self, conn: Any, info: QueueInfo, jobs: Sequence[NewJob],
                          now: float) -> list[Job]:
        """Store jobs that use a dedup key, dependencies or a bounded queue (inside a txn).

        The caller has locked the queue's row if the queue is bounded or a job has a dedup
        key, and read ``info`` under that lock; it also notifies the queue.
        """
        results: list[Job | None] = [None] * len(jobs)
        fresh: list[int] = []
        hits = 0
        for index, job in enumerate(jobs):
            existing = self._find_duplicate(conn, info.name, job, now)
            if existing is not None:
                results[index] = existing
                hits += 1
            else:
                fresh.append(index)
        if info.max_size is not None:
            occupied = conn.execute(self.q["count_occupied"], {"queue": info.name}).fetchone()["n"]
            if occupied + len(fresh) > info.max_size:
                raise QueueFull(
                    f"queue {info.name!r} holds {occupied} ready or leased job(s) of at most "
                    f"{info.max_size}; {len(fresh)} more do not fit", info.name
                )
        if hits:
            conn.execute(self.q["count_dedup_hit"], {"queue": info.name, "n": hits})
        for index in fresh:
            results[index] = self._insert_workflow_job(conn, info.name, jobs[index], now)
        return [job for job in results if job is not None]

    def _find_duplicate(self, conn: Any, queue: str, job: NewJob, now: float) -> Job | None:
        if job.dedup_key is None:
            return None
        row = conn.execute(self.q["find_dedup"], {"queue": queue, "key": job.dedup_key}).fetchone()
        if row is None:
            return None
        if (row["state"] in ("done", "cancelled")
                and row["finished_at"] + job.dedup_window <= now):
            return None
        return dataclasses.replace(job_from_row(row), deduplicated=True)

    def _lock_parents(self, conn: Any, parents: Sequence[int]) -> dict[int, str]:
        """The states of ``parents`` ('dead' when dead-lettered), each row share-locked.

        A parent moved between ``jobs`` and ``dead_letters`` while this waited for its lock
        is looked up again: the move has committed by then, so the next look finds it.
        """
        ids = sorted(set(parents))
        states: dict[int, str] = {}
        for _ in range(3):
            missing = [i for i in ids if i not in states]
            if not missing:
                break
            for row in conn.execute(self.q["lock_live_parents"],
                                    {"ids": self.dialect.array(missing)}):
                states[row["id"]] = row["state"]
            missing = [i for i in missing if i not in states]
            if missing:
                for row in conn.execute(self.q["lock_dead_parents"],
                                        {"ids": self.dialect.array(missing)}):
                    states[row["id"]] = "dead"
        return states

    def _insert_workflow_job(self, conn: Any, queue: str, job: NewJob, now: float) -> Job:
        states = self._lock_parents(conn, job.depends_on) if job.depends_on else {}
        unmet, dead, cancelled = 0, 0, 0
        for parent in job.depends_on:
            state = states.get(parent)
            if state is None:
                raise InvalidDependency(f"depends_on names job {parent}, which does not exist")
            unmet += state != "done"
            dead += state == "dead"
            cancelled += state == "cancelled"
        row = conn.execute(self.q["insert_workflow_job"], {
            "queue": queue, "state": "waiting" if unmet else "ready",
            "priority": job.priority, "payload": job.payload_json, "headers": job.headers_json,
            "max_attempts": job.max_attempts, "available_at": job.available_at, "now": now,
            "dedup_key": job.dedup_key, "timeout": job.timeout,
            "depends_on": json.dumps(list(job.depends_on)) if job.depends_on else None,
            "group_key": job.group_key,
        }).fetchone()
        stored = job_from_row(row)
        if job.depends_on:
            conn.execute(self.q["insert_dependencies"], {
                "job_id": stored.id, "parents": self.dialect.array(list(job.depends_on))})
        if dead or cancelled:
            reason, fate = ((DEPENDENCY_FAILED, "dead-lettered") if dead
                            else (DEPENDENCY_CANCELLED, "cancelled"))
            self._dead_letter(conn, stored.id, queue, reason,
                              f"a job it depends on was {fate} before it was enqueued", 0, now)
            return dataclasses.replace(stored, state=JobState.DEAD, finished_at=now)
        return stored

    def count_rejected_full(self, queue: str) -> None:
        with self.dialect.transaction() as conn:
            conn.execute(self.q["count_rejected_full"], {"queue": queue})

    def _delete_queue_workflows(self, conn: Any, name: str) -> DeletedQueue:
        """Delete the schedules that target queue ``name`` and its subscriptions (inside a txn).

        Left behind, a schedule's next tick or a publish to the topic would recreate the queue.
        Called before the queue's row is locked: a tick being fired holds its schedule's row and
        a publish its subscriptions' rows before the queue's, so this waits for them to commit
        (the deletion then takes their jobs too) or they wait for it and find the rows gone.
        """
        schedules = conn.execute(self.q["delete_queue_schedules"], {"name": name}).fetchall()
        topics = conn.execute(self.q["delete_queue_subscriptions"], {"name": name}).fetchall()
        return DeletedQueue(name=name, schedules=tuple(sorted(r["name"] for r in schedules)),
                            topics=tuple(sorted(r["topic"] for r in topics)))

    # -- topics -----------------------------------------------------------------------------

    def subscribe(self, topic: str, queue: str, now: float) -> bool:
        with self.dialect.transaction() as conn:
            return bool(conn.execute(self.q["subscribe"], {"topic": topic, "queue": queue,
                                                           "now": now}).rowcount == 1)

    def unsubscribe(self, topic: str, queue: str) -> bool:
        with self.dialect.transaction() as conn:
            return bool(conn.execute(self.q["unsubscribe"],
                                     {"topic": topic, "queue": queue}).rowcount == 1)

    def subscriptions(self, topic: str | None) -> list[Subscription]:
        with self.dialect.translate_errors():
            rows = self.dialect.conn().execute(self.q["list_subscriptions"]).fetchall()
        return [Subscription(topic=r["topic"], queue=r["queue"], created_at=r["created_at"])
                for r in rows if topic is None or r["topic"] == topic]

    def publish(self, topic: str, job: NewJob, *, now: float,
                queue_defaults: tuple[int, float]) -> list[Job]:
        def work() -> list[Job]:
            with self.dialect.transaction() as conn:
                queues = [r["queue"] for r in conn.execute(self.q["subscribers"],
                                                           {"topic": topic})]
                if not queues:
                    raise NoSubscribers(f"no queue subscribes to topic {topic!r}; nothing was "
                                        "published (subscribe a queue first)")
                stored = []
                for name in queues:  # in name order: publishes lock queues in the same order
                    info = self._locked_queue(conn, name, job, queue_defaults, now)
                    stored.append(self._enqueue_workflow(conn, info, [job], now)[0])
                    self.dialect.notify(conn, name)
                return stored
        return self.dialect.write(work, adds_jobs=True)

    # -- schedules --------------------------------------------------------------------------

    def upsert_schedule(self, schedule: ScheduleInfo, *, keep_next_run: bool) -> ScheduleInfo:
        params = {
            "name": schedule.name, "queue": schedule.queue,
            "payload": json.dumps(schedule.payload, separators=(",", ":"), ensure_ascii=False),
            "headers": json.dumps(schedule.headers) if schedule.headers else None,
            "priority": schedule.priority, "max_attempts": schedule.max_attempts,
            "every": schedule.every, "cron": schedule.cron, "timezone": schedule.timezone,
            "next_run_at": schedule.next_run_at, "now": schedule.updated_at,
        }
        q = self.q
        with self.dialect.transaction() as conn:
            row = conn.execute(q["lock_schedule"], {"name": schedule.name}).fetchone()
            if row is None:
                created = conn.execute(q["insert_schedule"], params).fetchone()
                if created is not None:
                    return schedule_from_row(created)
                # Declared by another process at the same moment: that one is the current.
                row = conn.execute(q["lock_schedule"], {"name": schedule.name}).fetchone()
            if row is not None and keep_next_run and all(
                row[key] == params[key] for key in
                ("queue", "payload", "headers", "priority", "max_attempts", "every", "cron",
                 "timezone")
            ):
                return schedule_from_row(row)  # declared again unchanged: keep its ticks
            return schedule_from_row(conn.execute(q["upsert_schedule"], params).fetchone())

    def delete_schedule(self, name: str) -> bool:
        with self.dialect.transaction() as conn:
            return bool(conn.execute(self.q["delete_schedule"], {"name": name}).rowcount == 1)

    def get_schedule(self, name: str) -> ScheduleInfo | None:
        with self.dialect.translate_errors():
            row = self.dialect.conn().execute(self.q["get_schedule"], {"name": name}).fetchone()
        return None if row is None else schedule_from_row(row)

    def list_schedules(self) -> list[ScheduleInfo]:
        with self.dialect.translate_errors():
            return [schedule_from_row(r)
                    for r in self.dialect.conn().execute(self.q["list_schedules"])]

    def due_schedules(self, now: float) -> list[str]:
        with self.dialect.translate_errors():
            return [r["name"] for r in self.dialect.conn().execute(self.q["due_schedules"],
                                                                   {"now": now})]

    def next_schedule_at(self) -> float | None:
        with self.dialect.translate_errors():
            row = self.dialect.conn().execute(self.q["next_schedule_at"]).fetchone()
        value = None if row is None else row["next_run_at"]
        return None if value is None else float(value)

    def fire_schedule(self, name: str, *, now: float,
                      advance: Callable[[ScheduleInfo, float], tuple[float | None, int]],
                      queue_defaults: tuple[int, float]) -> Job | None:
        return self.dialect.write(lambda: self._fire_schedule_now(
            name, now=now, advance=advance, queue_defaults=queue_defaults), adds_jobs=True)

    def _fire_schedule_now(self, name: str, *, now: float,
                           advance: Callable[[ScheduleInfo, float], tuple[float | None, int]],
                           queue_defaults: tuple[int, float]) -> Job | None:
        with self.dialect.transaction() as conn:
            row = conn.execute(self.q["lock_due_schedule"], {"name": name}).fetchone()
            if row is None or row["next_run_at"] > now or row["finished_at"] is not None:
                return None  # deleted, finished, or another scheduler fired this tick first
            schedule = schedule_from_row(row)
            next_run_at, missed = advance(schedule, now)
            finished_at = now if next_run_at is None else None  # a cron out of ticks ends
            headers = {**schedule.headers, "schedule": name,
                       "scheduled_for": schedule.next_run_at}
            job = NewJob(payload=schedule.payload, payload_json=row["payload"], headers=headers,
                         headers_json=json.dumps(headers), priority=schedule.priority,
                         available_at=now, max_attempts=schedule.max_attempts)
            info = self._locked_queue(conn, schedule.queue, job, queue_defaults, now)
            stored = self._enqueue_workflow(conn, info, [job], now)[0]
            self.dialect.notify(conn, schedule.queue)
            changed = conn.execute(self.q["advance_schedule"], {
                "name": name, "tick": schedule.next_run_at,
                "next_run_at": schedule.next_run_at if next_run_at is None else next_run_at,
                "now": now, "job_id": stored.id, "missed": missed, "finished_at": finished_at,
            }).rowcount
            assert changed == 1, "the schedule row is held by this transaction"
            return stored
