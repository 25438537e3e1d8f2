"""Reading and housekeeping, written once for every dialect: jobs, history, dead letters,
stats, alerts, running jobs, cleanup, the worker registry, stored values and throughput.

:class:`Reads` is the first layer of :class:`~.core.SQLBackend`: it holds the dialect and its
statements, and everything here runs on them; the transitions that change a job's state are
the layers above (:mod:`.workflows`, :mod:`.core`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from typing import Any

from ..errors import JobNotFound
from ..models import (
    ALERT_KINDS,
    Alert,
    DeadLetter,
    Job,
    JobEvent,
    JobState,
    QueueStats,
    RunningJob,
    ThroughputPoint,
    WorkerInfo,
)
from .base import Backend
from .dialect import Dialect
from .history import timeline
from .rows import dead_letter_from_row, event_from_row, job_from_row, loads


class Reads(Backend):
    """Read-mostly operations, on ``self.dialect`` (see the module docstring)."""

    def __init__(self, dialect: Dialect) -> None:
        #: The database's side: connections, transactions, fast paths (:mod:`.dialect`).
        self.dialect = dialect
        #: Its named statements (shared and its own).
        self.q: Mapping[str, str] = dialect.queries

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dialect.describe()!r})"

    def close(self) -> None:
        self.dialect.close()

    def schema_version(self) -> int:
        return self.dialect.schema_version()

    def atomic(self) -> Any:
        return self.dialect.atomic()

    def wait_for_change(self, timeout: float, poll_interval: float,
                        queue: str | None = None) -> bool:
        return self.dialect.wait_for_change(timeout, poll_interval, queue)

    def execute_read(self, query: str, params: Any = ()) -> list[Any]:
        """Run a read-only statement of the library's own (diagnostics, EXPLAIN)."""
        return self.dialect.execute_read(query, params)

    def quick_check(self) -> list[str]:
        return self.dialect.quick_check()

    def database_facts(self, *, integrity: bool = False) -> dict[str, Any]:
        return self.dialect.database_facts(integrity=integrity)

    # -- jobs -------------------------------------------------------------------------------

    def get_job(self, job_id: int) -> Job:
        with self.dialect.translate_errors():
            conn = self.dialect.conn()
            row = conn.execute(self.q["get_job"], {"id": job_id}).fetchone()
            if row is not None:
                return job_from_row(row)
            dead = conn.execute(self.q["get_dead_letter"], {"id": job_id}).fetchone()
        if dead is None:
            raise JobNotFound(f"no job with id {job_id}")
        letter = dead_letter_from_row(dead)
        return Job(
            id=letter.id, queue=letter.queue, payload=letter.payload, headers=letter.headers,
            priority=letter.priority, state=JobState.DEAD, attempts=letter.attempts,
            max_attempts=letter.max_attempts or letter.attempts, lease_token=None,
            lease_expires_at=None, created_at=letter.created_at, available_at=letter.dead_at,
            updated_at=letter.dead_at, finished_at=letter.dead_at,
            last_error=letter.last_error, dedup_key=dead["dedup_key"],
            depends_on=tuple(loads(dead["depends_on"]) or ()), timeout=letter.timeout,
            started_at=dead["started_at"], claimed_by=dead["claimed_by"],
        )

    def list_jobs(self, queue: str | None, *, state: JobState | None, headers: dict[str, Any],
                  limit: int, offset: int, newest_first: bool) -> list[Job]:
        query, params = list_jobs_query(self.dialect, queue, state=state, headers=headers,
                                        limit=limit, offset=offset, newest_first=newest_first)
        with self.dialect.translate_errors():
            return [job_from_row(row) for row in self.dialect.conn().execute(query, params)]

    def history(self, job_id: int) -> list[JobEvent]:
        with self.dialect.snapshot() as conn:  # the row and its events at one moment
            rows = conn.execute(self.q["job_events"], {"job_id": job_id}).fetchall()
            try:
                job: Job | None = self.get_job(job_id)
            except JobNotFound:
                job = None  # cleaned up, purged or deleted: its stored events only
        return timeline(job, [event_from_row(row) for row in rows])

    def dead_letters(self, queue: str | None, *, limit: int, offset: int) -> list[DeadLetter]:
        page = {"limit": limit, "offset": offset}
        with self.dialect.translate_errors():
            conn = self.dialect.conn()
            if queue is None:
                rows = conn.execute(self.q["list_all_dead_letters"], page)
            else:
                rows = conn.execute(self.q["list_dead_letters"], {**page, "queue": queue})
            return [dead_letter_from_row(row) for row in rows]

    def stats(self, now: float) -> dict[str, QueueStats]:
        with self.dialect.snapshot() as conn:  # one consistent state for all the counts
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
                cancelled=entry.get("cancelled", 0),
                throttled=entry.get("throttled", 0),
                held=entry.get("held", 0),
                retry_pending=entry.get("retry_pending", 0),
            )
            for name, entry in sorted(counts.items())
        }

    def _stats_counts(self, conn: Any, now: float) -> dict[str, dict[str, Any]]:
        q = self.q
        counts: dict[str, dict[str, Any]] = {
            row["name"]: {"paused": row["paused"]} for row in conn.execute(q["list_queues"])
        }
        for row in conn.execute(q["count_by_state"]):
            counts.setdefault(row["queue"], {})[row["state"]] = row["n"]
        self._pending_counts(conn, now, counts)
        for row in conn.execute(q["count_retries"]):
            counts.setdefault(row["queue"], {})["retries"] = row["n"]
        for row in conn.execute(q["workflow_counters"]):
            counts.setdefault(row["name"], {}).update(dedup_hits=row["dedup_hits"],
                                                      rejected_full=row["rejected_full"])
        return counts

    def _pending_counts(self, conn: Any, now: float, counts: dict[str, dict[str, Any]]) -> None:
        """Add each queue's ready, scheduled, expired, retry-pending and dead counts and the
        age of its oldest ready job to ``counts``."""
        for row in conn.execute(self.q["count_pending_detail"], {"now": now}):
            entry = counts.setdefault(row["queue"], {})
            entry["ready_now"] = row["ready_now"]
            entry["scheduled"] = row["scheduled"]
            entry["expired"] = row["expired"]
            entry["retry_pending"] = row["retry_pending"]
            if row["oldest_ready_at"] is not None:
                entry["oldest_ready_age"] = max(0.0, now - row["oldest_ready_at"])
        for row in conn.execute(self.q["count_dead"]):
            counts.setdefault(row["queue"], {})["dead"] = row["n"]

    # -- operators' reads: alerts, running jobs ---------------------------------------------

    def alerts(self, now: float, *, failures_since: float) -> list[Alert]:
        with self.dialect.snapshot() as conn:  # thresholds and values at one moment
            thresholds = conn.execute(self.q["alert_thresholds"]).fetchall()
            if not thresholds:
                return []
            counts: dict[str, dict[str, Any]] = {}
            self._pending_counts(conn, now, counts)
            window = {"since": failures_since}
            failures = {row["queue"]: int(row["n"])
                        for row in conn.execute(self.q["alert_failed"], window)}
            acks = {row["queue"]: int(row["n"])
                    for row in conn.execute(self.q["alert_acked"], window)}
        found = []
        for row in sorted(thresholds, key=lambda r: str(r["name"])):  # as stats, any collation
            entry = counts.get(row["name"], {})
            failed, acked = failures.get(row["name"], 0), acks.get(row["name"], 0)
            values = {"depth": entry.get("ready_now", 0),
                      "oldest_age": entry.get("oldest_ready_age") or 0.0,
                      "failure_rate": failed / (failed + acked) if failed else 0.0,
                      "dead_letters": entry.get("dead", 0)}
            for kind in ALERT_KINDS:
                threshold = row[f"alert_{kind}"]
                if threshold is not None:
                    value = float(values[kind])
                    found.append(Alert(queue=row["name"], kind=kind, value=value,
                                       threshold=float(threshold), firing=value >= threshold))
        return found

    def running_jobs(self, queue: str | None, *, limit: int, now: float) -> list[RunningJob]:
        params = {"queue": queue, "limit": limit, "now": now}
        with self.dialect.translate_errors():
            rows = self.dialect.conn().execute(self.q["running_jobs"], params).fetchall()
        found = []
        for row in rows:
            started = row["started_at"]
            task = (loads(row["headers"]) or {}).get("task")
            found.append(RunningJob(
                id=row["id"], queue=row["queue"],
                task=task if isinstance(task, str) else None, worker=row["claimed_by"],
                started_at=started,
                running_for=None if started is None else max(0.0, now - started),
                progress=row["progress"], progress_message=row["progress_message"],
                attempt=row["attempts"], lease_expires_at=row["lease_expires_at"],
                cancel_requested=row["cancel_requested_at"] is not None))
        return found

    # -- housekeeping -----------------------------------------------------------------------

    def dependency_results(self, job_id: int) -> dict[int, Any]:
        with self.dialect.translate_errors():
            rows = self.dialect.conn().execute(self.q["dependency_results"],
                                               {"id": job_id}).fetchall()
        return {int(row["id"]): loads(row["result"]) for row in rows}

    def cleanup(self, *, before: float, queue: str | None, batch: int, vacuum: bool,
                results_before: float | None = None) -> int:
        """Delete done and cancelled jobs finished before ``before`` (and, with
        ``results_before``, done jobs with a result finished before it), in short
        transactions."""
        with self.dialect.translate_errors():
            conn = self.dialect.conn()
            if queue is not None:
                names = [queue]
            else:
                # Every queue, and the queues of done jobs whose queue row is gone.
                names = [row["name"] for row in conn.execute(self.q["list_queues"])]
                done = {row["name"] for row in conn.execute(self.q["done_queue_names"])}
                names += sorted(done - set(names))
        removed = 0
        passes = [("cleanup_done", before), ("cleanup_cancelled", before)]
        if results_before is not None and results_before > before:
            passes.append(("cleanup_results", results_before))  # results kept result_ttl
        for name in names:
            for query, until in passes:
                while True:
                    params = {"queue": name, "before": until, "batch": batch}
                    count = self.dialect.write(partial(self._delete_batch, query, params))
                    removed += count
                    if count < batch:
                        break
        while self.dialect.write(partial(self._delete_batch, "cleanup_events",
                                         {"batch": batch})) >= batch:
            pass
        # Flow control's memory of groups that went quiet (their rotation and rate state).
        self.dialect.write(partial(self._delete_batch, "flow_forget_groups", {"before": before}))
        if vacuum:
            self.dialect.vacuum()
        self.dialect.after_cleanup()
        return removed

    def _delete_batch(self, query: str, params: dict[str, Any]) -> int:
        with self.dialect.transaction() as conn:
            return int(conn.execute(self.q[query], params).rowcount)

    # -- processes and stored values (settle on a full disk, like claims and acks) -----------

    def _write_one(self, query: str, params: dict[str, Any]) -> int:
        def work() -> int:
            with self.dialect.transaction() as conn:
                return int(conn.execute(self.q[query], params).rowcount)
        return self.dialect.write(work)

    def register_worker(self, worker_id: str, *, kind: str, host: str, pid: int,
                        queues: list[str], now: float) -> None:
        self._write_one("register_worker", {"id": worker_id, "kind": kind, "host": host,
                                            "pid": pid, "queues": json.dumps(queues),
                                            "now": now})

    def heartbeat_worker(self, worker_id: str, *, processed: int, failed: int,
                         now: float) -> bool:
        return self._write_one("heartbeat_worker", {"id": worker_id, "processed": processed,
                                                    "failed": failed, "now": now}) == 1

    def stop_worker(self, worker_id: str, now: float) -> None:
        self._write_one("stop_worker", {"id": worker_id, "now": now})

    def workers(self, *, stale_before: float) -> list[WorkerInfo]:
        with self.dialect.translate_errors():
            rows = self.dialect.conn().execute(self.q["list_workers"],
                                               {"before": stale_before}).fetchall()
        return [
            WorkerInfo(id=r["id"], kind=r["kind"], host=r["host"], pid=r["pid"],
                       queues=json.loads(r["queues"]), state=r["state"],
                       started_at=r["started_at"], heartbeat_at=r["heartbeat_at"],
                       stopped_at=r["stopped_at"], processed=r["processed"], failed=r["failed"])
            for r in rows
        ]

    def prune_workers(self, *, before: float, stale_before: float) -> int:
        params = {"before": before, "lost_before": stale_before}
        return int(self.dialect.write(partial(self._delete_batch, "prune_workers", params)))

    def kv_get(self, key: str) -> str | None:
        with self.dialect.translate_errors():
            row = self.dialect.conn().execute(self.q["kv_get"], {"key": key}).fetchone()
        return None if row is None else str(row["value"])

    def kv_set(self, key: str, value: str, now: float) -> None:
        with self.dialect.transaction() as conn:
            conn.execute(self.q["kv_set"], {"key": key, "value": value, "now": now})

    def kv_compare_and_set(self, key: str, expected: str | None, value: str,
                           now: float) -> bool:
        params = {"key": key, "value": value, "expected": expected, "now": now}
        query = "kv_insert_absent" if expected is None else "kv_compare_and_set"
        with self.dialect.transaction() as conn:
            return bool(conn.execute(self.q[query], params).rowcount == 1)

    def throughput(self, *, since: float, bucket: float) -> list[ThroughputPoint]:
        points: dict[tuple[str, float], dict[str, int]] = {}
        params = {"since": float(since), "bucket": float(bucket)}
        with self.dialect.translate_errors():
            conn = self.dialect.conn()
            for field_name in ("enqueued", "acked", "failed", "dead"):
                for row in conn.execute(self.q[f"throughput_{field_name}"], params):
                    key = (row["queue"], float(row["bucket"]))
                    points.setdefault(key, {})[field_name] = row["n"]
        return [ThroughputPoint(queue=queue, bucket=start, **counts)
                for (queue, start), counts in sorted(points.items(), key=lambda i: i[0][::-1])]


def list_jobs_query(dialect: Dialect, queue: str | None, *, state: JobState | None,
                    headers: dict[str, Any], limit: int, offset: int,
                    newest_first: bool) -> tuple[str, dict[str, Any]]:
    """The statement and parameters of :meth:`Reads.list_jobs` (its filters vary)."""
    p = dialect.param
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if queue is not None:
        clauses.append(f"queue = {p('queue')}")
        params["queue"] = queue
    if state is not None:
        # The literal term names the partial index holding only jobs in that state (the
        # parameter alone cannot, in a generic plan); done jobs are read by id, stopping
        # after a page.
        clauses.append(dialect.state_index_terms.get(state, "") + f"state = {p('state')}")
        params["state"] = state.value
    for index, (key, value) in enumerate(sorted(headers.items())):
        # Header keys are validated against HEADER_KEY_PATTERN; keys and values are parameters.
        clauses.append(dialect.header_clause(index, key, value, params))
    where = " AND ".join(clauses) or "1 = 1"
    order = "DESC" if newest_first else "ASC"
    query = (
        "SELECT *, COALESCE(max_attempts, (SELECT q.max_attempts FROM queues q "  # noqa: S608
        f"WHERE q.name = jobs.queue)) AS effective_max_attempts FROM jobs WHERE {where} "
        f"ORDER BY id {order} LIMIT {p('limit')} OFFSET {p('offset')}"
    )
    return query, params
