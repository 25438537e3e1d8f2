"""Enqueueing in the SQLite backend: single jobs, uniform batches and the queue they need.

:class:`SQLiteEnqueue` is a mixin of :class:`~persistent_queue.sqlite_backend.SQLiteBackend`.
These are the hottest statements of a producer, tuned for it (see ``bench/README.md``): a job
for an existing, unbounded queue is one autocommit ``INSERT ... SELECT``, a batch is one
``INSERT ... SELECT ... FROM json_each``; anything with workflow options (a dedup key,
dependencies, a bounded queue) goes through :mod:`.sqlite_workflows` inside a transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import _GeneratorContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from .interfaces import NewJob
from .models import Job, JobState, QueueInfo
from .rows import make_job as _make_job
from .rows import queue_from_row as _queue_from_row
from .sqlite_connection import Q
from .sqlite_rows import translate_errors

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Looked up once: the single enqueue runs them once per job.
_INSERT_JOB_IF_QUEUE = Q["insert_job_if_queue"]
_READY = JobState.READY
_TRANSLATE_ERRORS = translate_errors()  # reusable: it holds no state
T = TypeVar("T")


class SQLiteEnqueue:
    """Enqueue operations of the SQLite backend (a mixin: see the module docstring)."""

    if TYPE_CHECKING:  # provided by SQLiteBackend and its other mixins
        def _transaction(self) -> _GeneratorContextManager[sqlite3.Connection]: ...
        def _conn(self) -> sqlite3.Connection: ...
        def _grouped(self, work: Callable[[], T]) -> T: ...
        def _enqueue_workflow(self, conn: sqlite3.Connection, info: QueueInfo,
                              jobs: Sequence[NewJob], now: float) -> list[Job]: ...

    # -- enqueue ----------------------------------------------------------------------------

    def enqueue(
        self,
        queue: str,
        jobs: Sequence[NewJob],
        *,
        now: float,
        queue_defaults: tuple[int, float],
    ) -> list[Job]:
        return self._grouped(
            lambda: self._enqueue_now(queue, jobs, now=now, queue_defaults=queue_defaults))

    def _enqueue_now(
        self,
        queue: str,
        jobs: Sequence[NewJob],
        *,
        now: float,
        queue_defaults: tuple[int, float],
    ) -> list[Job]:
        if len(jobs) == 1:
            job = jobs[0]
            if job.dedup_key is None and not job.depends_on:
                with _TRANSLATE_ERRORS:
                    inserted = self._conn().execute(_INSERT_JOB_IF_QUEUE, {
                        "queue": queue, "priority": job.priority, "payload": job.payload_json,
                        "headers": job.headers_json, "max_attempts": job.max_attempts,
                        "available_at": job.available_at, "now": now,
                    }).fetchall()
                if inserted:
                    (job_id, max_attempts), = inserted
                    return [_make_job(job_id, queue, job.payload, job.headers, job.priority,
                                      _READY, 0, max_attempts, None, None, now,
                                      job.available_at, now, None, None, None, False, ())]
        rows = [
            {
                "queue": queue,
                "priority": job.priority,
                "payload": job.payload_json,
                "headers": job.headers_json,
                "max_attempts": job.max_attempts,
                "available_at": job.available_at,
                "now": now,
            }
            for job in jobs
        ]
        with self._transaction() as conn:
            info = self._ensure_queue(conn, queue, queue_defaults, now)
            if info.max_size is not None or any(
                job.dedup_key is not None or job.depends_on for job in jobs
            ):
                return self._enqueue_workflow(conn, info, jobs, now)
            insert = Q["insert_job"]
            if len(rows) == 1:
                first_id = conn.execute(insert, rows[0]).lastrowid
                assert first_id is not None
            else:
                conn.executemany(insert, rows)
                # Inside one write transaction AUTOINCREMENT ids are consecutive.
                last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
                first_id = last - len(rows) + 1
        return [
            self._new_job(job, first_id + index, queue, job.max_attempts or info.max_attempts,
                          now)
            for index, job in enumerate(jobs)
        ]

    def enqueue_uniform(self, queue: str, template: NewJob, payloads: Sequence[Any],
                        payload_jsons: Sequence[str], *, now: float,
                        queue_defaults: tuple[int, float]) -> list[Job]:
        if len(payloads) == 1:
            return self.enqueue(queue, [template], now=now, queue_defaults=queue_defaults)
        return self._grouped(lambda: self._enqueue_uniform_now(
            queue, template, payloads, payload_jsons, now=now, queue_defaults=queue_defaults))

    def _enqueue_uniform_now(self, queue: str, template: NewJob, payloads: Sequence[Any],
                             payload_jsons: Sequence[str], *, now: float,
                             queue_defaults: tuple[int, float]) -> list[Job]:
        with self._transaction() as conn:
            info = self._ensure_queue(conn, queue, queue_defaults, now)
            if info.max_size is not None:  # bounded: counted and checked row by row
                return self._enqueue_workflow(conn, info, [
                    NewJob(payload, text, dict(template.headers), template.headers_json,
                           template.priority, template.available_at, template.max_attempts)
                    for payload, text in zip(payloads, payload_jsons, strict=True)
                ], now)
            last_id = conn.execute(Q["insert_jobs_batch"], {
                "queue": queue, "priority": template.priority, "headers": template.headers_json,
                "max_attempts": template.max_attempts, "available_at": template.available_at,
                "now": now, "payloads": _dumps(payload_jsons),
            }).lastrowid
        assert last_id is not None
        # One statement inside one write transaction: AUTOINCREMENT ids are consecutive.
        first_id = last_id - len(payloads) + 1
        headers, priority, available_at = template.headers, template.priority, \
            template.available_at
        max_attempts = template.max_attempts or info.max_attempts
        ready, make = JobState.READY, _make_job
        return [
            make(first_id + index, queue, payload, dict(headers) if headers else {}, priority,
                 ready, 0, max_attempts, None, None, now, available_at, now, None, None, None,
                 False, ())
            for index, payload in enumerate(payloads)
        ]

    @staticmethod
    def _new_job(job: NewJob, job_id: int, queue: str, max_attempts: int, now: float) -> Job:
        # Positional (fields in declaration order): this runs once per enqueued job.
        return _make_job(job_id, queue, job.payload, job.headers, job.priority, JobState.READY,
                         0, max_attempts, None, None, now, job.available_at, now, None, None,
                         None, False, ())

    def _ensure_queue(
        self, conn: sqlite3.Connection, name: str, defaults: tuple[int, float], now: float
    ) -> QueueInfo:
        row = conn.execute(Q["get_queue"], {"name": name}).fetchone()
        if row is None:
            max_attempts, visibility_timeout = defaults
            conn.execute(
                Q["ensure_queue"],
                {
                    "name": name,
                    "max_attempts": max_attempts,
                    "visibility_timeout": visibility_timeout,
                    "now": now,
                },
            )
            row = conn.execute(Q["get_queue"], {"name": name}).fetchone()
        return _queue_from_row(row)
