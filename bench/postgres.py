"""The PostgreSQL rows of the benchmark: this project on PostgreSQL and raw psycopg.

The harness starts its own throw-away PostgreSQL cluster (``scripts/pg_cluster.py``) with a
durable configuration: ``fsync=on``, ``full_page_writes=on``, ``synchronous_commit=on``
(the server default); each session then sets ``synchronous_commit`` from the system's mode
(``full`` → on, ``normal`` → off), exactly as the backend maps ``durability``. Clients
connect over TCP on 127.0.0.1, as a separate database server would be reached.

A system's "path" is the URL of its own database: :func:`fresh_database` drops and recreates
it before each workload, so every workload starts on an empty database, as the SQLite rows
start on a new file. Without PostgreSQL programs (or psycopg) :func:`bench_cluster` prints
one line and the PostgreSQL rows are skipped.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from .systems import PROJECT_QUEUE, SYSTEMS, Adapter, ProjectAdapter, make_payload

ROOT = Path(__file__).resolve().parents[1]

#: Server settings of the benchmark cluster: durable (fsync, full pages), modest memory.
SETTINGS = {
    "fsync": "on",
    "full_page_writes": "on",
    "synchronous_commit": "on",
    "shared_buffers": "128MB",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "5min",
    "max_connections": "100",
}

#: The live cluster (set by :func:`bench_cluster` in the harness process, or by a test).
_cluster: Any = None


def is_postgres(key: str) -> bool:
    """Whether a system key (or a ``probe-`` key) names a PostgreSQL row."""
    return key.removeprefix("probe-") in PG_SYSTEMS


def _dbname(key: str) -> str:
    return "bench_" + "".join(ch if ch.isalnum() else "_" for ch in key)


def database_url(key: str) -> str:
    """The URL of ``key``'s database, created if it does not exist yet."""
    if _cluster is None:
        raise RuntimeError("no PostgreSQL cluster: run through `python -m bench`")
    name = _dbname(key)
    try:
        _cluster.create_database(name)
    except Exception as exc:
        if "already exists" not in str(exc):
            raise
    return str(_cluster.url(name))


def fresh_database(key: str) -> str:
    """Drop and recreate ``key``'s database; returns its URL."""
    if _cluster is None:
        raise RuntimeError("no PostgreSQL cluster: run through `python -m bench`")
    _cluster.drop_database(_dbname(key))
    return database_url(key)


def use_cluster(cluster: Any) -> None:
    """Run the PostgreSQL rows on an already running cluster (tests)."""
    global _cluster
    _cluster = cluster


def unavailable_reason() -> str | None:
    """Why the PostgreSQL rows cannot run here, or None."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import pg_cluster
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    reason: str | None = pg_cluster.unavailable_reason()
    return reason


@contextmanager
def bench_cluster(systems: list[str]) -> Iterator[None]:
    """Start a durable throw-away cluster if ``systems`` has PostgreSQL rows; without
    PostgreSQL, print why and remove those rows from ``systems`` (in place)."""
    global _cluster
    wanted = [key for key in systems if is_postgres(key)]
    reason = unavailable_reason() if wanted else None
    if not wanted or reason:
        if reason:
            print(f"PostgreSQL rows skipped ({', '.join(wanted)}): {reason}", flush=True)
            systems[:] = [key for key in systems if not is_postgres(key)]
        yield
        return
    sys.path.insert(0, str(ROOT / "scripts"))
    import pg_cluster

    sys.path.remove(str(ROOT / "scripts"))
    with pg_cluster.throwaway_cluster(settings=SETTINGS) as cluster:
        _cluster = cluster
        print(f"PostgreSQL cluster on 127.0.0.1:{cluster.port} ({settings_note()})", flush=True)
        try:
            yield
        finally:
            _cluster = None


_stack = ExitStack()


def start(systems: list[str]) -> None:
    """:func:`bench_cluster` for the harness, until :func:`stop` (or interpreter exit)."""
    _stack.enter_context(bench_cluster(systems))


def stop() -> None:
    _stack.close()


def running() -> bool:
    return _cluster is not None


def run_extras(results: dict[str, Any], workdir: str, args: argparse.Namespace) -> None:
    """Interleaved rounds against raw psycopg and claim latency with history (scaled down)."""
    from . import paired

    if args.paired_rounds:
        print("PostgreSQL: interleaved rounds, this project vs raw psycopg", flush=True)
        results["pg_paired"] = paired.run(
            workdir, rounds=args.paired_rounds, ours_key="pg-{mode}", raw_key="raw-pg-{mode}",
            jobs={"normal": max(200, args.jobs // 4), "full": max(100, args.full_jobs // 4)})
    if args.history_done and not args.only_paired:
        results["pg_history"] = run_history(args)


def run_history(args: argparse.Namespace) -> dict[str, Any]:
    """The claim-latency-with-history measure on PostgreSQL, scaled down."""
    done = history_done(args.history_done)
    print(f"PostgreSQL: claim latency with {done:,} done jobs", flush=True)
    return history(done=done, ready=args.history_ready,
                   samples=min(2_000, args.history_ready // 2 - 2))


def print_notes(results: dict[str, Any]) -> None:
    """After the main table: the PostgreSQL settings and its claim-latency table."""
    from .paired import table as paired_table
    from .report import history_table

    if any(is_postgres(key) for key in results["systems"]):
        results.setdefault("meta", {})["postgres"] = {"server": SETTINGS, "note": settings_note()}
        print(f"\nPostgreSQL rows: {settings_note()}; ratios are to raw psycopg in the same mode")
    if "pg_paired" in results:
        print()
        print("PostgreSQL vs raw psycopg, " + paired_table(results["pg_paired"]))
    if "pg_history" in results:
        print()
        print("PostgreSQL " + history_table(results["pg_history"]))


def settings_note() -> str:
    return ("PostgreSQL server fsync=on, full_page_writes=on, TCP 127.0.0.1; "
            "full = synchronous_commit=on, normal = synchronous_commit=off")


# -- this project on PostgreSQL ---------------------------------------------------------------

class PgProjectAdapter(ProjectAdapter):
    """``Queue("postgresql://...")`` with the same calls as the SQLite rows."""

    def __init__(self, path: str, mode: str) -> None:
        super().__init__(path, mode)
        self.name = f"persistent-queue on PostgreSQL ({mode})"

    def relax_for_prefill(self) -> None:
        return None


# -- raw psycopg: the physical limit ---------------------------------------------------------

RAW_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state smallint NOT NULL DEFAULT 0,          -- 0 ready, 1 leased, 2 done
    payload text NOT NULL,
    available_at double precision NOT NULL,
    token text
);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (id) WHERE state IN (0, 1);
"""
RAW_INSERT = "INSERT INTO jobs (payload, available_at) VALUES (%s, %s)"
#: One statement, one round trip: the insert and its wake-up in the same transaction.
RAW_INSERT_NOTIFY = """
WITH added AS (INSERT INTO jobs (payload, available_at) VALUES (%s, %s) RETURNING id)
SELECT pg_notify('raw_bench', 'bench') FROM added
"""
RAW_CLAIM = """
UPDATE jobs SET state = 1, token = %s, available_at = %s + 30
WHERE id IN (SELECT id FROM jobs WHERE state IN (0, 1) AND available_at <= %s
             ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
RETURNING id, token, payload
"""
RAW_ACK = "UPDATE jobs SET state = 2, token = NULL WHERE id = %s AND state = 1 AND token = %s"


class RawPostgresAdapter(Adapter):
    """Hand-written claim (one ``UPDATE ... FOR UPDATE SKIP LOCKED ... RETURNING``) and fenced
    ack, autocommit, prepared statements, LISTEN/NOTIFY for the waiting consumer."""

    supports_batch_enqueue = True
    supports_batch_claim = True

    def __init__(self, path: str, mode: str) -> None:
        import psycopg

        self.name = f"raw psycopg ({mode})"
        self.conn = psycopg.connect(path, autocommit=True, prepare_threshold=0)
        self.conn.execute(f"SET synchronous_commit = {'on' if mode == 'full' else 'off'}")
        if self.conn.execute("SELECT to_regclass('jobs')").fetchone()[0] is None:  # type: ignore[index]
            for statement in RAW_SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement, prepare=False)
        self._listening = False

    def enqueue(self, payload: str) -> None:
        self.conn.execute(RAW_INSERT_NOTIFY, (payload, time.time()))

    def enqueue_batch(self, payloads: Sequence[str]) -> None:
        now = time.time()
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(RAW_INSERT, [(p, now) for p in payloads])
            cur.execute("SELECT pg_notify('raw_bench', 'bench')")

    def claim(self) -> tuple[Any, str] | None:
        got = self.claim_batch(1)
        return got[0] if got else None

    def ack(self, handle: Any) -> None:
        if self.conn.execute(RAW_ACK, handle).rowcount != 1:
            raise RuntimeError(f"raw ack lost the lease of {handle}")

    def claim_batch(self, count: int) -> list[tuple[Any, str]]:
        now = time.time()
        rows = self.conn.execute(RAW_CLAIM, (secrets.token_hex(8), now, now, count)).fetchall()
        return [((r[0], r[1]), r[2]) for r in rows]

    def ack_batch(self, handles: Sequence[Any]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(RAW_ACK, list(handles))

    def wait_claim(self, timeout: float) -> tuple[Any, str] | None:
        """LISTEN before the first claim, so a notification between claim and wait is kept."""
        if not self._listening:
            self.conn.execute("LISTEN raw_bench")
            self._listening = True
        deadline = time.monotonic() + timeout
        while True:
            for _ in self.conn.notifies(timeout=0, stop_after=1000):  # drain pending ones
                pass
            got = self.claim()
            left = deadline - time.monotonic()
            if got is not None or left <= 0:
                return got
            for _ in self.conn.notifies(timeout=left, stop_after=1):
                pass

    def close(self) -> None:
        self.conn.close()


#: key -> (adapter class, durability); ``raw-pg-<mode>`` is the baseline of ``pg-<mode>``.
PG_SYSTEMS: dict[str, tuple[type[Adapter], str]] = {
    "pg-full": (PgProjectAdapter, "full"),
    "pg-normal": (PgProjectAdapter, "normal"),
    "raw-pg-full": (RawPostgresAdapter, "full"),
    "raw-pg-normal": (RawPostgresAdapter, "normal"),
}
SYSTEMS.update(PG_SYSTEMS)


# -- claim latency with a long history --------------------------------------------------------

MARK_DONE = """
UPDATE jobs SET state = 'done', finished_at = %(now)s, updated_at = %(now)s
WHERE state = 'ready'
"""


def build_history(url: str, *, done: int, ready: int) -> None:
    """``done`` finished jobs (then ``VACUUM ANALYZE``, as autovacuum would) and ``ready``
    claimable ones."""
    import psycopg

    from persistent_queue import Queue

    with Queue(url, durability="normal") as q:
        for start in range(0, done, 10_000):
            count = min(10_000, done - start)
            q.enqueue_many(PROJECT_QUEUE, [make_payload(start + i) for i in range(count)])
    with psycopg.connect(url, autocommit=True) as conn:
        if done:
            conn.execute("SET synchronous_commit = off")
            conn.execute(MARK_DONE, {"now": time.time()})
        conn.execute("VACUUM (ANALYZE) jobs")
    with Queue(url, durability="normal") as q:
        for start in range(0, ready, 1000):
            count = min(1000, ready - start)
            q.enqueue_many(PROJECT_QUEUE, [make_payload(start + i) for i in range(count)])


def history(*, done: int, ready: int, samples: int) -> dict[str, Any]:
    """The SQLite history workload's measure on PostgreSQL (same result layout)."""
    from .history import claim_latency

    results: dict[str, Any] = {"done": done, "ready": ready, "samples": samples}
    for label, count in (("empty", 0), ("history", done)):
        url = fresh_database(f"history-{label}")
        started = time.perf_counter()
        build_history(url, done=count, ready=ready)
        results[f"{label}_build_s"] = time.perf_counter() - started
        for mode in ("normal", "full"):
            results[f"{label}_{mode}"] = claim_latency(url, mode, samples)
    return results


def history_done(requested: int) -> int:
    """PostgreSQL's history is scaled down: 200,000 done jobs at most (a million rows take
    minutes to write and mark done on a shared two-core machine)."""
    return min(requested, 200_000)
