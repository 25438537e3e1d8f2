"""Workflow storage for the PostgreSQL backend (placeholder until the workflow mixin lands).

Only the hooks the core calls exist here; every workflow operation reports that it is not
available on PostgreSQL yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from .interfaces import NewJob
from .models import Job, QueueInfo


def _unsupported(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise NotImplementedError("workflows are not available on PostgreSQL yet")


class PostgresWorkflows:
    """Workflow operations of the PostgreSQL backend (placeholder mixin)."""

    def _enqueue_workflow(self, conn: Any, info: QueueInfo, jobs: Sequence[NewJob],
                          now: float) -> list[Job]:
        _unsupported()

    def _after_dead_letter(self, conn: Any, job_id: int, now: float) -> None:
        """No dependents can exist without workflows."""

    def _after_redrive(self, conn: Any, job_id: int, now: float) -> None:
        """No dependents can exist without workflows."""

    def _workflow_counters(self, conn: Any) -> dict[str, tuple[int, int]]:
        return {row["name"]: (row["dedup_hits"], row["rejected_full"])
                for row in conn.execute("SELECT name, dedup_hits, rejected_full FROM queues")}

    count_rejected_full = subscribe = unsubscribe = subscriptions = publish = _unsupported
    upsert_schedule = delete_schedule = get_schedule = list_schedules = _unsupported
    due_schedules = next_schedule_at = fire_schedule = _unsupported
