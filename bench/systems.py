"""The systems under test, each behind one small adapter with the same five operations.

An adapter is built from a file path in the process that uses it (drains run in child
processes, so every adapter opens its own connections). ``claim`` returns ``(handle, payload)``
or ``None`` when nothing is ready; ``ack`` finishes the handle. Payloads are ``str`` of about
200 bytes whose first field is a sequence number, so every drain can be checked for
duplicates and losses.

Peers (persist-queue, huey, litequeue) are imported lazily: they are installed only in the
benchmark's own environment, never as dependencies of the project.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

PROJECT_QUEUE = "bench"


class Adapter:
    """One system opened on one path (in the current process)."""

    name = "?"
    supports_batch_enqueue = False
    supports_batch_claim = False
    has_ack = True

    def enqueue(self, payload: str) -> None:
        raise NotImplementedError

    def enqueue_batch(self, payloads: Sequence[str]) -> None:
        for payload in payloads:
            self.enqueue(payload)

    def claim(self) -> tuple[Any, str] | None:
        raise NotImplementedError

    def ack(self, handle: Any) -> None:
        raise NotImplementedError

    def claim_batch(self, count: int) -> list[tuple[Any, str]]:
        raise NotImplementedError

    def ack_batch(self, handles: Sequence[Any]) -> None:
        for handle in handles:
            self.ack(handle)

    def wait_claim(self, timeout: float) -> tuple[Any, str] | None:
        """Claim, waiting up to ``timeout`` s; systems without a blocking get poll every 10 ms."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.claim()
            if got is not None or time.monotonic() >= deadline:
                return got
            time.sleep(0.01)

    def close(self) -> None:
        """Release connections."""

    def relax_for_prefill(self) -> None:
        """Untimed prefills of systems without a batch API: skip fsync (synchronous=OFF)."""
        for conn in self._connections():
            conn.execute("PRAGMA synchronous = OFF")

    def _connections(self) -> list[sqlite3.Connection]:
        return []


# -- this project -----------------------------------------------------------------------------

class ProjectAdapter(Adapter):
    supports_batch_enqueue = True
    supports_batch_claim = True

    def __init__(self, path: str, mode: str) -> None:
        from persistent_queue import Queue

        self.name = f"persistent-queue ({mode})"
        self.q = Queue(path, durability=mode)  # type: ignore[arg-type]

    def enqueue(self, payload: str) -> None:
        self.q.enqueue(PROJECT_QUEUE, payload)

    def enqueue_batch(self, payloads: Sequence[str]) -> None:
        self.q.enqueue_many(PROJECT_QUEUE, payloads)

    def claim(self) -> tuple[Any, str] | None:
        job = self.q.dequeue(PROJECT_QUEUE)
        return None if job is None else (job, job.payload)  # type: ignore[return-value]

    def ack(self, handle: Any) -> None:
        self.q.ack(handle)

    def claim_batch(self, count: int) -> list[tuple[Any, str]]:
        return [(job, job.payload) for job in self.q.dequeue_many(PROJECT_QUEUE, count)]

    def ack_batch(self, handles: Sequence[Any]) -> None:
        ack_many = getattr(self.q, "ack_many", None)
        if ack_many is not None:
            ack_many(handles)
        else:
            for handle in handles:
                self.q.ack(handle)

    def wait_claim(self, timeout: float) -> tuple[Any, str] | None:
        job = self.q.dequeue(PROJECT_QUEUE, wait=timeout)
        return None if job is None else (job, job.payload)  # type: ignore[return-value]

    def close(self) -> None:
        self.q.close()


# -- raw SQLite: the physical limit ----------------------------------------------------------

RAW_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    state INTEGER NOT NULL DEFAULT 0,          -- 0 ready, 1 leased, 2 done
    payload TEXT NOT NULL,
    available_at REAL NOT NULL,
    token TEXT
);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (id) WHERE state IN (0, 1);
"""
RAW_INSERT = "INSERT INTO jobs (payload, available_at) VALUES (?, ?)"
RAW_CLAIM = """
UPDATE jobs SET state = 1, token = ?, available_at = ? + 30
WHERE id IN (SELECT id FROM jobs WHERE state IN (0, 1) AND available_at <= ?
             ORDER BY id LIMIT ?)
RETURNING id, token, payload
"""
RAW_ACK = "UPDATE jobs SET state = 2, token = NULL WHERE id = ? AND state = 1 AND token = ?"


class RawSQLiteAdapter(Adapter):
    """Hand-written claim (one UPDATE ... RETURNING) and fenced ack, autocommit, WAL."""

    supports_batch_enqueue = True
    supports_batch_claim = True

    def __init__(self, path: str, mode: str) -> None:
        self.name = f"raw SQLite ({mode})"
        self.soft_claims = mode == "full"
        self.conn = sqlite3.connect(path, timeout=60, isolation_level=None,
                                    check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute(f"PRAGMA synchronous = {'FULL' if mode == 'full' else 'NORMAL'}")
        if self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            self.conn.executescript(RAW_SCHEMA)

    def enqueue(self, payload: str) -> None:
        self.conn.execute(RAW_INSERT, (payload, time.time()))

    def enqueue_batch(self, payloads: Sequence[str]) -> None:
        now = time.time()
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(RAW_INSERT, [(p, now) for p in payloads])
        self.conn.execute("COMMIT")

    def claim(self) -> tuple[Any, str] | None:
        rows = self._claim(1)
        return ((rows[0][0], rows[0][1]), rows[0][2]) if rows else None

    def _claim(self, count: int) -> list[Any]:
        # In full durability a claim commits without its own fsync, as this project's does:
        # the next synced commit (the ack) makes it durable.
        now = time.time()
        if not self.soft_claims:
            return self.conn.execute(RAW_CLAIM, (secrets.token_hex(8), now, now, count)).fetchall()
        self.conn.execute("PRAGMA synchronous = NORMAL")
        try:
            return self.conn.execute(RAW_CLAIM, (secrets.token_hex(8), now, now, count)).fetchall()
        finally:
            self.conn.execute("PRAGMA synchronous = FULL")

    def ack(self, handle: Any) -> None:
        if self.conn.execute(RAW_ACK, handle).rowcount != 1:
            raise RuntimeError(f"raw ack lost the lease of {handle}")

    def claim_batch(self, count: int) -> list[tuple[Any, str]]:
        return [((r[0], r[1]), r[2]) for r in self._claim(count)]

    def ack_batch(self, handles: Sequence[Any]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(RAW_ACK, handles)
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


# -- peers ------------------------------------------------------------------------------------

class PersistQueueAdapter(Adapter):
    """persist-queue's SQLiteAckQueue (its defaults; one connection per process)."""

    def __init__(self, path: str, mode: str) -> None:
        import persistqueue

        self.name = "persist-queue SQLiteAckQueue (full)"
        self._empty = persistqueue.Empty
        self.q = persistqueue.SQLiteAckQueue(path, auto_commit=True, multithreading=True,
                                            timeout=60)

    def enqueue(self, payload: str) -> None:
        self.q.put(payload)

    def claim(self) -> tuple[Any, str] | None:
        try:
            item = self.q.get(block=False, raw=True)
        except self._empty:
            return None
        return item["pqid"], item["data"]

    def ack(self, handle: Any) -> None:
        self.q.ack(id=handle)

    def _connections(self) -> list[sqlite3.Connection]:
        return [c for c in (getattr(self.q, "_putter", None), getattr(self.q, "_getter", None))
                if c is not None]

    def wait_claim(self, timeout: float) -> tuple[Any, str] | None:
        try:
            item = self.q.get(block=True, timeout=timeout, raw=True)
        except self._empty:
            return None
        return item["pqid"], item["data"]


class HueyAdapter(Adapter):
    """huey's SqliteStorage: dequeue deletes the row, so there is no ack (at-most-once)."""

    has_ack = False

    def __init__(self, path: str, mode: str) -> None:
        from huey.storage import SqliteStorage

        self.name = "huey SqliteStorage, no ack (full)"
        self.s = SqliteStorage(name="bench", filename=path, timeout=60)

    def enqueue(self, payload: str) -> None:
        self.s.enqueue(payload.encode())

    def claim(self) -> tuple[Any, str] | None:
        data = self.s.dequeue()
        return None if data is None else (None, bytes(data).decode())

    def ack(self, handle: Any) -> None:
        return None

    def _connections(self) -> list[sqlite3.Connection]:
        return [self.s.conn]


class LiteQueueAdapter(Adapter):
    """litequeue's LiteQueue: pop() leases a message, done() finishes it."""

    def __init__(self, path: str, mode: str) -> None:
        from litequeue import LiteQueue

        self.name = "litequeue (normal)"
        self.q = LiteQueue(path, timeout=60)

    def enqueue(self, payload: str) -> None:
        self.q.put(payload)

    def claim(self) -> tuple[Any, str] | None:
        message = self.q.pop()
        return None if message is None else (message.message_id, message.data)

    def ack(self, handle: Any) -> None:
        self.q.done(handle)

    def _connections(self) -> list[sqlite3.Connection]:
        return [self.q.conn]


#: key -> (adapter class, durability). Peers keep their own defaults, which are WAL with
#: SQLite's default synchronous=FULL (persist-queue, huey) or synchronous=NORMAL (litequeue).
SYSTEMS: dict[str, tuple[type[Adapter], str]] = {
    "pq-full": (ProjectAdapter, "full"),
    "pq-normal": (ProjectAdapter, "normal"),
    "raw-full": (RawSQLiteAdapter, "full"),
    "raw-normal": (RawSQLiteAdapter, "normal"),
    "persist-queue": (PersistQueueAdapter, "full"),
    "huey": (HueyAdapter, "full"),
    "litequeue": (LiteQueueAdapter, "normal"),
}
PEERS = ("persist-queue", "huey", "litequeue")


def baseline_of(key: str) -> str:
    """The raw SQLite run a system is compared with: the same synchronous setting."""
    if _postgres.is_postgres(key):  # raw psycopg in the same mode
        return f"raw-pg-{SYSTEMS[key][1]}"
    return f"raw-{SYSTEMS[key][1]}"


def open_system(key: str, path: str) -> Adapter:
    cls, mode = SYSTEMS[key]
    return cls(path, mode)


def system_path(workdir: str, key: str) -> str:
    """persist-queue wants a directory; PostgreSQL rows a database URL; the others a file."""
    if _postgres.is_postgres(key):
        return _postgres.database_url(key)
    if key == "persist-queue":
        return os.path.join(workdir, key)
    return os.path.join(workdir, f"{key}.db")


def make_payload(seq: int, size: int = 200) -> str:
    """A ~``size``-byte string whose first field is ``seq``."""
    head = f"{seq:08d}|"
    return head + "x" * (size - len(head))


def seq_of(payload: str) -> int:
    return int(payload[:8])


from . import postgres as _postgres  # noqa: E402  (registers the PostgreSQL rows in SYSTEMS)
