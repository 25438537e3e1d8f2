"""Reading and housekeeping for the PostgreSQL backend: jobs, history, stats, cleanup,
the worker registry, stored values, throughput and database facts.

A base of :class:`~persistent_queue.postgres_backend.PostgresBackend`; the transitions that
change a job's state live there.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import sql
from .errors import JobNotFound
from .models import (
    DeadLetter,
    Job,
    JobEvent,
    JobState,
    QueueStats,
)
from .postgres_connection import Connection, PostgresConnections
from .postgres_rows import translate_errors
from .rows import dead_letter_from_row, job_from_row, loads
from .worker_store import WorkerStore

Q = sql.queries("postgres")

#: A term that lets the planner use the partial index of jobs in that state.
_STATE_INDEX_TERM = {
    JobState.READY: "state IN ('ready', 'leased') AND ",
    JobState.LEASED: "state IN ('ready', 'leased') AND ",
    JobState.WAITING: "state = 'waiting' AND ",
    JobState.DONE: "state = 'done' AND ",
}


class PostgresReads(PostgresConnections, WorkerStore):
    """Read-mostly operations of the PostgreSQL backend."""

    _queries = Q
    _translate_errors = staticmethod(translate_errors)

    if TYPE_CHECKING:  # provided by the workflow mixin
        def _workflow_counters(self, conn: Connection) -> dict[str, tuple[int, int]]: ...

    # -- jobs -------------------------------------------------------------------------------

    def get_job(self, job_id: int) -> Job:
        with translate_errors():
            conn = self._conn()
            row = conn.execute(Q["get_job"], {"id": job_id}).fetchone()
            if row is not None:
                return job_from_row(row)
            dead = conn.execute(Q["get_dead_letter"], {"id": job_id}).fetchone()
        if dead is None:
            raise JobNotFound(f"no job with id {job_id}")
        letter = dead_letter_from_row(dead)
        return Job(
            id=letter.id, queue=letter.queue, payload=letter.payload, headers=letter.headers,
            priority=letter.priority, state=JobState.DEAD, attempts=letter.attempts,
            max_attempts=letter.max_attempts or letter.attempts, lease_token=None,
            lease_expires_at=None, created_at=letter.created_at, available_at=letter.dead_at,
            updated_at=letter.dead_at, finished_at=letter.dead_at,
            last_error=letter.last_error, dedup_key=dead.get("dedup_key"),
            depends_on=tuple(loads(dead.get("depends_on")) or ()),
        )

    def list_jobs(
        self,
        queue: str | None,
        *,
        state: JobState | None,
        headers: dict[str, Any],
        limit: int,
        offset: int,
        newest_first: bool,
    ) -> list[Job]:
        query, params = list_jobs_query(queue, state=state, headers=headers, limit=limit,
                                        offset=offset, newest_first=newest_first)
        with translate_errors():
            return [job_from_row(row) for row in self._conn().execute(query, params)]

    def history(self, job_id: int) -> list[JobEvent]:
        with translate_errors():
            rows = self._conn().execute(Q["job_events"], {"job_id": job_id}).fetchall()
        return [
            JobEvent(job_id=r["job_id"], queue=r["queue"], at=r["at"], event=r["event"],
                     attempt=r["attempt"], detail=r["detail"])
            for r in rows
        ]

    def dead_letters(self, queue: str | None, *, limit: int, offset: int) -> list[DeadLetter]:
        with translate_errors():
            if queue is None:
                rows = self._conn().execute(Q["list_all_dead_letters"],
                                            {"limit": limit, "offset": offset})
            else:
                rows = self._conn().execute(Q["list_dead_letters"],
                                            {"queue": queue, "limit": limit, "offset": offset})
            return [dead_letter_from_row(row) for row in rows]

    def stats(self, now: float) -> dict[str, QueueStats]:
        with translate_errors():
            conn = self._conn()
            with conn.transaction():
                if not getattr(self._local, "atomic", False):
                    # One consistent snapshot for all the counts.
                    conn.execute(Q["snapshot"])
                counts = self._stats_counts(conn, now)
        return {
            name: QueueStats(
                queue=name,
                waiting=entry.get("waiting", 0),
                ready=entry.get("ready_now", 0),
                scheduled=entry.get("scheduled", 0),
                leased=entry.get("leased", 0),
                expired=entry.get("expired", 0),
                done=entry.get("done", 0),
                dead=entry.get("dead", 0),
                paused=bool(entry.get("paused", False)),
                oldest_ready_age=entry.get("oldest_ready_age"),
                retries=entry.get("retries", 0),
                dedup_hits=entry.get("dedup_hits", 0),
                rejected_full=entry.get("rejected_full", 0),
            )
            for name, entry in sorted(counts.items())
        }

    def _stats_counts(self, conn: Connection, now: float) -> dict[str, dict[str, Any]]:
        counts: dict[str, dict[str, Any]] = {
            row["name"]: {"paused": row["paused"]} for row in conn.execute(Q["list_queues"])
        }
        for row in conn.execute(Q["count_by_state"]):
            counts.setdefault(row["queue"], {})[row["state"]] = row["n"]
        for row in conn.execute(Q["count_pending_detail"], {"now": now}):
            entry = counts.setdefault(row["queue"], {})
            entry["ready_now"] = row["ready_now"]
            entry["scheduled"] = row["scheduled"]
            entry["expired"] = row["expired"]
            if row["oldest_ready_at"] is not None:
                entry["oldest_ready_age"] = max(0.0, now - row["oldest_ready_at"])
        for row in conn.execute(Q["count_dead"]):
            counts.setdefault(row["queue"], {})["dead"] = row["n"]
        for row in conn.execute(Q["count_retries"]):
            counts.setdefault(row["queue"], {})["retries"] = row["n"]
        for name, (hits, rejected) in self._workflow_counters(conn).items():
            counts.setdefault(name, {}).update(dedup_hits=hits, rejected_full=rejected)
        return counts

    # -- housekeeping -----------------------------------------------------------------------

    def cleanup(self, *, before: float, queue: str | None, batch: int, vacuum: bool) -> int:
        """Delete done jobs finished before ``before``, in short transactions."""
        with translate_errors():
            conn = self._conn()
            if queue is not None:
                names = [queue]
            else:
                # Every queue, and the queues of done jobs whose queue row is gone.
                names = [row["name"] for row in conn.execute(Q["list_queues"])]
                done_names = {row["name"] for row in conn.execute(Q["done_queue_names"])}
                names += sorted(done_names - set(names))
        removed = 0
        for name in names:
            while True:
                with self._transaction() as tx:
                    count = tx.execute(Q["cleanup_done"], {"queue": name, "before": before,
                                                           "batch": batch}).rowcount
                removed += count
                if count < batch:
                    break
        while True:
            with self._transaction() as tx:
                count = tx.execute(Q["cleanup_events"], {"batch": batch}).rowcount
            if count < batch:
                break
        if vacuum:
            with translate_errors():
                # Autocommit: VACUUM cannot run inside a transaction block.
                self._conn().execute(Q["vacuum"])
        return removed

    # -- health -----------------------------------------------------------------------------

    def quick_check(self) -> list[str]:
        """Broken invariants of the stored queue (empty when it is sound)."""
        with translate_errors():
            rows = self._conn().execute(Q["quick_check"]).fetchall()
        return [str(row["problem"]) for row in rows]

    def database_facts(self, *, integrity: bool = False) -> dict[str, Any]:
        """Server version and settings; with ``integrity`` also the invariant checks."""
        with translate_errors():
            conn = self._conn()
            facts: dict[str, Any] = {"engine": "postgresql", "backend": "postgresql",
                                     "url": self.display_url}
            row = conn.execute(Q["health_server_version"]).fetchone()
            facts["server_version"] = None if row is None else row["server_version"]
            settings = conn.execute(Q["health_settings"]).fetchone() or {}
            facts.update(settings)
            page_size = int(settings.get("page_size") or 8192)
            facts["page_count"] = int(settings.get("database_bytes") or 0) // page_size
            facts["freelist_count"] = 0
            facts["journal_mode"] = "wal"  # PostgreSQL always logs ahead of writing
            facts["busy_timeout_ms"] = round(self.busy_timeout * 1000)
        if integrity:
            problems = self.quick_check()
            facts["integrity"] = "\n".join(problems) if problems else "ok"
        return facts


def list_jobs_query(
    queue: str | None,
    *,
    state: JobState | None,
    headers: dict[str, Any],
    limit: int,
    offset: int,
    newest_first: bool,
) -> tuple[str, dict[str, Any]]:
    """The statement and parameters of :meth:`PostgresReads.list_jobs` (its filters vary)."""
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if queue is not None:
        clauses.append("queue = %(queue)s")
        params["queue"] = queue
    if state is not None:
        # The literal term names the partial index holding only jobs in that state (the
        # parameter alone cannot, in a generic plan); done jobs may also be read by id,
        # stopping after a page.
        clauses.append(_STATE_INDEX_TERM.get(state, "") + "state = %(state)s")
        params["state"] = state.value
    for index, (key, value) in enumerate(sorted(headers.items())):
        # Keys and values are parameters; only the parameter names are formatted in.
        params[f"hkey{index}"] = key
        alternatives = [value]
        if isinstance(value, bool):  # as in SQLite, where JSON true reads as 1
            alternatives.append(int(value))
        elif isinstance(value, int | float) and value in (0, 1):
            alternatives.append(bool(value))
        params[f"hval{index}"] = [json.dumps(item) for item in alternatives]
        clauses.append(f"headers::jsonb -> %(hkey{index})s "  # noqa: S608
                       f"= ANY (%(hval{index})s::jsonb[])")
    where = " AND ".join(clauses) or "true"
    order = "DESC" if newest_first else "ASC"
    query = (
        "SELECT *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q "  # noqa: S608
        f"WHERE q.name = jobs.queue)) AS effective_max_attempts FROM jobs WHERE {where} "
        f"ORDER BY id {order} LIMIT %(limit)s OFFSET %(offset)s"
    )
    return query, params
