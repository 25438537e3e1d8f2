"""The public face of the library: :class:`Queue`.

``Queue`` validates every argument, reads the clock, computes retry delays and waits for work;
the backend (SQLite by default) performs each transition atomically. The class is composed of
one mixin per part, each in its own module: producing (``producing.py``), consuming and the
lease (``consuming.py``), reading (``reads.py``), administration of queues and dead letters
(``administration.py``) and workflows (``workflows.py``); what they share is
``queue_base.QueueBase``. Construction, lifecycle, processes and stored values live here.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import timedelta

from . import config, validation
from .administration import AdministrationMixin
from .config import Durability
from .consuming import ConsumingMixin
from .errors import InvalidArgument
from .models import WorkerInfo
from .producing import ProducingMixin
from .queue_base import JobRef
from .reads import ReadsMixin
from .retry import RetryPolicy
from .storage import Backend, open_backend
from .storage.postgres.url import mask_url
from .task_results import TaskResultsMixin
from .workflows import WorkflowMixin

__all__ = ["JobRef", "Queue"]


def _open_backend(
    target: str | os.PathLike[str] | Backend, durability: Durability, busy_timeout: float
) -> Backend:
    if isinstance(target, Backend):
        return target
    return open_backend(target, durability=durability, busy_timeout=busy_timeout)


class Queue(ProducingMixin, ConsumingMixin, ReadsMixin, AdministrationMixin, WorkflowMixin,
            TaskResultsMixin):
    """A persistent job queue: every named queue lives in one database.

    Args:
        db: path of the SQLite file (created with its parent directories), ``sqlite:///path``,
            or a PostgreSQL URL ``postgresql://user@host:port/database`` (password from the
            URL or libpq's environment; it never appears in a message or repr).
            Or a backend instance (``SQLiteBackend(...)``, ``PostgresBackend(...)``), used as
            it is (its own durability and busy timeout apply).
        durability: ``"full"`` (an acknowledged write survives power loss) or ``"normal"``
            (it survives a process crash; faster). On SQLite a claim (``dequeue``) is made
            durable by the next synced commit rather than its own fsync: power loss before
            then returns the job to the queue, as an expired lease would.
        visibility_timeout: default lease length for queues created implicitly.
        max_attempts: default deliveries before dead-lettering, for queues created implicitly.
        max_payload_bytes: largest encoded payload accepted.
        busy_timeout: seconds to wait for another writer before ``DatabaseBusy``.
        retry_policy: backoff after a ``nack`` without an explicit delay.
        clock: returns the current time in seconds since the epoch (injectable for tests).
        poll_interval: how often a waiting ``dequeue`` looks for new commits.
        dedup_window: seconds after a job with a dedup key is done during which an enqueue
            with the same key still returns it (default 0: only while it is unfinished).
        result_ttl: seconds a done job's task result is kept: ``cleanup`` (the janitor)
            deletes done jobs holding a result finished longer ago (default 7 days).

    A ``Queue`` may be shared by threads (each uses its own connection) and survives ``fork``
    (the child opens new connections).
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | Backend = config.DEFAULT_DB_PATH,
        *,
        durability: Durability = config.DEFAULT_DURABILITY,
        visibility_timeout: float = config.DEFAULT_VISIBILITY_TIMEOUT,
        max_attempts: int = config.DEFAULT_MAX_ATTEMPTS,
        max_payload_bytes: int = config.DEFAULT_MAX_PAYLOAD_BYTES,
        busy_timeout: float = config.DEFAULT_BUSY_TIMEOUT,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        poll_interval: float = config.DEFAULT_POLL_INTERVAL,
        dedup_window: float | timedelta = config.DEFAULT_DEDUP_WINDOW,
        result_ttl: float | timedelta = config.RESULT_TTL,
    ) -> None:
        if durability not in ("full", "normal"):
            raise InvalidArgument(f"durability must be 'full' or 'normal', not {durability!r}")
        self.default_visibility_timeout = validation.seconds(
            visibility_timeout, name="visibility_timeout",
            maximum=config.MAX_VISIBILITY_TIMEOUT, allow_zero=False)
        self.default_max_attempts = validation.integer(
            max_attempts, name="max_attempts", minimum=1, maximum=config.MAX_ATTEMPTS_LIMIT)
        self.max_payload_bytes = validation.integer(
            max_payload_bytes, name="max_payload_bytes", minimum=1, maximum=2**31)
        self.poll_interval = validation.seconds(
            poll_interval, name="poll_interval", maximum=10.0, allow_zero=False)
        self.dedup_window = validation.seconds(dedup_window, name="dedup_window",
                                               maximum=float("inf"))
        self.result_ttl = validation.seconds(result_ttl, name="result_ttl",
                                             maximum=float("inf"))
        self.durability = durability
        self.retry_policy = retry_policy or RetryPolicy()
        self._clock = clock
        self._last_reap = float("-inf")
        self._reap_lock = threading.Lock()
        self._busy = set()  # queues whose last claim found work
        #: Processes registered through this Queue: kind, host, pid, queues.
        self._registered: dict[str, tuple[str, str, int, list[str]]] = {}
        self.backend = _open_backend(db, durability, busy_timeout)
        #: The database: the path or URL given, or for a backend instance what it describes.
        self.db = (
            db if not isinstance(db, Backend) else getattr(
                getattr(db, "dialect", None), "describe", lambda: repr(db))())

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close every database connection. The queue cannot be used afterwards."""
        self.backend.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Queue({mask_url(os.fspath(self.db))!r}, durability={self.durability!r})"

    def now(self) -> float:
        """The queue's clock reading (seconds since the epoch)."""
        return self._clock()

    # -- processes --------------------------------------------------------------------------

    def register_worker(self, worker_id: str, *, kind: str, queues: Iterable[str] = (),
                        host: str | None = None, pid: int | None = None) -> None:
        """Record a producer/consumer process as running (shown by ``workers()``)."""
        import socket

        names = [validation.queue_name(name) for name in queues]
        self._registered[worker_id] = (kind, host or socket.gethostname(),
                                       os.getpid() if pid is None else pid, names)
        self._register(worker_id)

    def heartbeat_worker(self, worker_id: str, *, processed: int = 0, failed: int = 0) -> None:
        """Record that a process is alive, adding to its processed/failed counters. A
        process registered through this Queue that was pruned meanwhile (``prune_workers``
        read it as lost) is registered again, its counters starting from these."""
        if self.backend.heartbeat_worker(worker_id, processed=processed, failed=failed,
                                         now=self._clock()):
            return
        if worker_id in self._registered:
            self._register(worker_id)
            self.backend.heartbeat_worker(worker_id, processed=processed, failed=failed,
                                          now=self._clock())

    def _register(self, worker_id: str) -> None:
        kind, host, pid, queues = self._registered[worker_id]
        self.backend.register_worker(worker_id, kind=kind, host=host, pid=pid, queues=queues,
                                     now=self._clock())

    def stop_worker(self, worker_id: str) -> None:
        """Record that a process exited cleanly."""
        self.backend.stop_worker(worker_id, self._clock())
        self._registered.pop(worker_id, None)

    def workers(self, *, stale_after: float = config.WORKER_STALE_AFTER) -> list[WorkerInfo]:
        """Registered processes: ``running``, ``stopped`` (they said goodbye) or ``lost``
        (running, but silent for ``stale_after`` seconds: killed, crashed or cut off; shown
        running again if a heartbeat comes after all)."""
        stale = validation.seconds(stale_after, name="stale_after", maximum=config.MAX_DELAY,
                                   allow_zero=False)
        return self.backend.workers(stale_before=self._clock() - stale)

    def prune_workers(self, older_than: float | timedelta = config.WORKER_RETENTION, *,
                      stale_after: float = config.WORKER_STALE_AFTER) -> int:
        """Forget stopped and lost workers last heard of ``older_than`` or more ago (a
        running worker is kept until it has been silent for ``stale_after`` seconds too);
        returns how many. The janitor runs it (``--workers-older-than``, default 7 days).
        """
        age = validation.seconds(older_than, name="older_than", maximum=float("inf"))
        stale = validation.seconds(stale_after, name="stale_after", maximum=config.MAX_DELAY,
                                   allow_zero=False)
        now = self._clock()
        return self.backend.prune_workers(before=now - age, stale_before=now - stale)

    # -- stored values and transactions ----------------------------------------------------

    def get_value(self, key: str) -> str | None:
        """A small durable value (e.g. a producer's file offset), or None."""
        return self.backend.kv_get(key)

    def set_value(self, key: str, value: str) -> None:
        """Store a small durable value."""
        self.backend.kv_set(key, value, self._clock())

    def compare_and_set_value(self, key: str, expected: str | None, value: str) -> bool:
        """Store ``value`` only if the stored value is still ``expected`` (None: the key has
        no value yet); True if stored, False (nothing changed) if another writer got there
        first.

        Inside ``atomic()`` the check and the write belong to the block's transaction, so
        ``with q.atomic(): ok = q.compare_and_set_value("offset", "41", "42")`` followed by
        writes that raise unless ``ok`` stores them only on top of the value this process
        last saw. A concurrent block writing the same key is waited for, then compared
        against: of two processes expecting the same value, exactly one succeeds.
        """
        return self.backend.kv_compare_and_set(key, expected, value, self._clock())

    def atomic(self) -> AbstractContextManager[None]:
        """Make this thread's writes inside the block one transaction: all of them or none.

        ``with q.atomic(): q.enqueue_many("q", lines); q.set_value("offset", "42")`` stores
        the jobs and the offset together. Only writes belong inside (never a waiting
        ``dequeue``), and blocks do not nest.
        """
        return self.backend.atomic()
