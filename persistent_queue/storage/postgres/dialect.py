"""The PostgreSQL dialect: what PostgreSQL supplies to the shared core, beyond its connections.

Where SQLite serialises writers on one lock, PostgreSQL locks rows: the core's locking
statements are ``FOR UPDATE``/``FOR SHARE`` here, and a claim skips rows another claim holds
(``FOR UPDATE SKIP LOCKED``), one statement. A write the server rolled back to break a
deadlock is run again (nothing of it was kept). Statements that make work claimable send
``pg_notify`` on commit, which ``wait_for_change`` listens for.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

import psycopg
from psycopg.rows import tuple_row

from ...config import Durability
from ...errors import DatabaseBusy, StorageError
from ...models import JobState
from .. import queries as sql
from ..base import NewJob
from ..dialect import Dialect
from .connection import Connection, PostgresConnections
from .errors import is_deadlock, translate_errors
from .external import AdoptedConnection, adopt

logger = logging.getLogger(__name__)
T = TypeVar("T")

Q = sql.queries("postgres")

#: How many times a write the server rolled back to break a deadlock is run again.
_DEADLOCK_RETRIES = 2


class PostgresDialect(PostgresConnections, Dialect):
    """One PostgreSQL database (see the module docstring).

    ``url`` is a libpq URL (``postgresql://user@host:port/db``); the password comes from the
    URL or from libpq's environment (``PGPASSWORD``, ``~/.pgpass``) and never appears in a
    message or repr.
    """

    name: ClassVar[str] = "postgres"
    state_index_terms: ClassVar[Mapping[JobState, str]] = {
        **Dialect.state_index_terms, JobState.DONE: "state = 'done' AND "}

    def __init__(self, url: str, *, durability: Durability = "full",
                 busy_timeout: float = 60.0) -> None:
        self.queries = Q
        super().__init__(url, durability=durability, busy_timeout=busy_timeout)

    def describe(self) -> str:
        return self.display_url

    def translate_errors(self) -> Any:
        return translate_errors()

    def adopt_connection(self, raw: psycopg.Connection[Any]) -> AdoptedConnection:
        return adopt(self, raw)

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        conn = self.conn()
        with translate_errors(), conn.transaction():
            if not self.in_atomic():
                conn.execute(Q["snapshot"])  # one consistent snapshot for every statement
            yield conn

    # -- how a write runs -------------------------------------------------------------------

    def write(self, work: Callable[[], T], *, grouped: bool = False,
              adds_jobs: bool = False) -> T:
        """Run ``work`` again (twice at most) when PostgreSQL aborted it to break a deadlock.

        An ack releases the dependents of each job it finishes, locking them one parent at a
        time; two acks whose parents share dependents in crossing order can deadlock, and the
        server then rolls one of them back whole. That one is safe to run again: nothing of
        it was kept. Inside ``atomic()`` the caller's transaction is gone too: raised as is.
        """
        for attempt in range(_DEADLOCK_RETRIES + 1):
            try:
                return work()
            except DatabaseBusy as exc:
                if attempt == _DEADLOCK_RETRIES or self.in_atomic() or not is_deadlock(exc):
                    raise
                logger.info("a write was rolled back to break a deadlock; running it again")
        raise AssertionError("unreachable")  # pragma: no cover

    def notify(self, conn: Any, queue: str) -> None:
        conn.execute(Q["notify"], {"queue": queue})

    # -- SQL the core builds or binds -------------------------------------------------------

    def param(self, name: str) -> str:
        return f"%({name})s"

    def array(self, values: Sequence[int]) -> list[int]:
        return list(values)

    def header_clause(self, index: int, key: str, value: Any, params: dict[str, Any]) -> str:
        params[f"hkey{index}"] = key
        alternatives = [value]
        if isinstance(value, bool):  # as in SQLite, where JSON true reads as 1
            alternatives.append(int(value))
        elif isinstance(value, int | float) and value in (0, 1):
            alternatives.append(bool(value))
        params[f"hval{index}"] = [json.dumps(item) for item in alternatives]
        return f"headers::jsonb -> %(hkey{index})s = ANY (%(hval{index})s::jsonb[])"

    # -- the hot paths ----------------------------------------------------------------------

    def claim_rows(self, queue: str, limit: int, visibility_timeout: float | None,
                   now: float, worker: str | None) -> list[tuple[Any, ...]]:
        params = {"queue": queue, "limit": limit, "visibility_timeout": visibility_timeout,
                  "now": now, "worker": worker}
        with translate_errors():
            cursor = self.conn().cursor(row_factory=tuple_row)  # read by position
            return cursor.execute(Q["claim"], params).fetchall()

    def has_claimable(self, queue: str, now: float) -> bool:
        # Always "might": on PostgreSQL the claim itself is the cheap check. Unlike SQLite's
        # write lock, a claim that finds nothing (SKIP LOCKED) waits for no one and writes
        # nothing, so a read first only costs a round trip per dequeue (~15% of a single
        # dequeue + ack). The `peek_claimable` query stays for tools that want the answer.
        return True

    def insert_one(self, queue: str, job: NewJob,
                   now: float) -> tuple[int, int, float | None] | None:
        with translate_errors():
            row = self.conn().execute(Q["insert_job_if_queue"], {
                "queue": queue, "priority": job.priority, "payload": job.payload_json,
                "headers": job.headers_json, "max_attempts": job.max_attempts,
                "available_at": job.available_at, "now": now, "timeout": job.timeout,
            }).fetchone()
        return None if row is None else (row["id"], row["max_attempts"], row["timeout"])

    def insert_jobs(self, conn: Connection, queue: str, jobs: Sequence[NewJob],
                    now: float) -> list[int]:
        ids = [row["id"] for row in conn.execute(Q["insert_jobs"], {
            "queue": queue, "now": now,
            "priorities": [job.priority for job in jobs],
            "payloads": [job.payload_json for job in jobs],
            "headers": [job.headers_json for job in jobs],
            "max_attempts": [job.max_attempts for job in jobs],
            "available_ats": [float(job.available_at) for job in jobs],
            "timeouts": [job.timeout for job in jobs], "group_key": None,
        })]
        if len(ids) != len(jobs):  # pragma: no cover - one row per array element
            raise StorageError(f"stored {len(ids)} of {len(jobs)} jobs")
        return ids

    def insert_uniform(self, conn: Connection, queue: str, template: NewJob,
                       payload_jsons: Sequence[str], now: float) -> list[int]:
        count = len(payload_jsons)
        ids = [row["id"] for row in conn.execute(Q["insert_jobs"], {
            "queue": queue, "now": now, "priorities": [template.priority] * count,
            "payloads": list(payload_jsons), "headers": [template.headers_json] * count,
            "max_attempts": [template.max_attempts] * count,
            "available_ats": [float(template.available_at)] * count,
            "timeouts": [template.timeout] * count, "group_key": template.group_key,
        })]
        if len(ids) != count:  # pragma: no cover - one row per array element
            raise StorageError(f"stored {len(ids)} of {count} jobs")
        return ids

    def ack_many_params(self, leases: Sequence[tuple[int, str]], now: float) -> dict[str, Any]:
        return {"ids": [job_id for job_id, _ in leases],
                "tokens": [token for _, token in leases], "now": now}

    # -- housekeeping and health ------------------------------------------------------------

    def vacuum(self) -> None:
        with translate_errors():
            # Autocommit: VACUUM cannot run inside a transaction block.
            self.conn().execute(Q["vacuum"])

    def quick_check(self) -> list[str]:
        """Broken invariants of the stored queue (empty when it is sound)."""
        with translate_errors():
            rows = self.conn().execute(Q["quick_check"]).fetchall()
        return [str(row["problem"]) for row in rows]

    def database_facts(self, *, integrity: bool = False) -> dict[str, Any]:
        """Server version and settings; with ``integrity`` also the invariant checks."""
        with translate_errors():
            conn = self.conn()
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
