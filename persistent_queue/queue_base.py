"""What every part of :class:`~persistent_queue.Queue` shares: :class:`QueueBase`.

``Queue`` is composed of mixins (producing, consuming, reads, administration, workflows), each
in its own module and each a subclass of ``QueueBase``: the settings, clock and backend that
``Queue.__init__`` sets, and the few helpers more than one part uses (a validated new job,
paging arguments, reaping expired leases).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from . import config, validation
from .config import Durability
from .errors import DatabaseBusy, InvalidArgument
from .models import JSON, Job
from .retry import RetryPolicy
from .storage import Backend, NewJob

# Queue's records keep the facade's logger name, as before its parts had modules of their own.
logger = logging.getLogger("persistent_queue.queue")

#: A job as handed out, or its id.
JobRef = Job | int

#: This process's default worker id, ``"pid@host"`` (see ``QueueBase.default_worker``):
#: computed on first use, forgotten in a forked child.
_process_worker: str | None = None


def _forget_process_worker() -> None:
    global _process_worker
    _process_worker = None


os.register_at_fork(after_in_child=_forget_process_worker)


class QueueBase:
    """The state ``Queue.__init__`` sets and the helpers its mixins share."""

    backend: Backend
    db: str | os.PathLike[str]
    durability: Durability
    default_visibility_timeout: float
    default_max_attempts: int
    max_payload_bytes: int
    poll_interval: float
    dedup_window: float
    result_ttl: float  # seconds a done job's task result is kept
    retry_policy: RetryPolicy
    _clock: Callable[[], float]
    _last_reap: float
    _reap_lock: threading.Lock
    _busy: set[str]  # queues whose last claim found work

    @property
    def _defaults(self) -> tuple[int, float]:
        return self.default_max_attempts, self.default_visibility_timeout

    @property
    def default_worker(self) -> str:
        """The worker id a claim records when given none: ``"pid@host"`` of this process
        (computed once per process: again in a forked child)."""
        global _process_worker
        if _process_worker is None:
            _process_worker = f"{os.getpid()}@{socket.gethostname()}"
        return _process_worker

    def _new_job(
        self,
        payload: JSON,
        *,
        priority: int,
        delay: float | timedelta,
        run_at: datetime | float | None,
        max_attempts: int | None,
        headers: Mapping[str, Any] | None,
        now: float,
        timeout: float | timedelta | None = None,
    ) -> NewJob:
        payload_json = validation.payload(payload, max_bytes=self.max_payload_bytes)
        clean_headers, headers_json = validation.headers(headers)
        priority = validation.integer(priority, name="priority",
                                      minimum=config.PRIORITY_MIN, maximum=config.PRIORITY_MAX)
        wait = validation.seconds(delay, name="delay", maximum=config.MAX_DELAY)
        available_at = now + wait
        if run_at is not None:
            if wait:
                raise InvalidArgument("give either delay or run_at, not both")
            stamp = run_at.timestamp() if isinstance(run_at, datetime) else run_at
            validation.seconds(stamp, name="run_at", maximum=now + config.MAX_DELAY)
            available_at = max(now, float(stamp))
        if max_attempts is not None:
            validation.integer(max_attempts, name="max_attempts", minimum=1,
                               maximum=config.MAX_ATTEMPTS_LIMIT)
        return NewJob(payload=payload, payload_json=payload_json, headers=clean_headers,
                      headers_json=headers_json, priority=priority, available_at=available_at,
                      max_attempts=max_attempts, timeout=validation.run_timeout(timeout))

    @staticmethod
    def _paging(limit: int, offset: int) -> tuple[int, int]:
        return (validation.integer(limit, name="limit", minimum=1, maximum=config.MAX_BATCH),
                validation.integer(offset, name="offset", minimum=0, maximum=2**62))

    # -- expired leases ---------------------------------------------------------------------

    def reap(self) -> int:
        """Dead-letter now every job whose lease expired on its last attempt, and cancel every
        job whose lease expired after its cancellation was requested; returns how many."""
        now = self._clock()
        with self._reap_lock:
            self._last_reap = now
        return self.backend.reap_expired(now)

    def _maybe_reap(self, now: float) -> None:
        # Throttled by the queue's own clock (leases expire by it too); a clock that steps
        # backwards does not stop reaping.
        if 0 <= now - self._last_reap < config.REAP_INTERVAL:
            return
        if not self._reap_lock.acquire(blocking=False):
            return
        try:
            self._last_reap = now
            try:
                reaped = self.backend.reap_expired(now)
            except DatabaseBusy:  # housekeeping: never fail the caller's read or claim for it
                logger.info("expired leases not reaped: the database stayed locked (tried "
                            "again in %g s)", config.REAP_INTERVAL)
                return
            if reaped:
                logger.warning("dead-lettered or cancelled %d job(s) whose lease expired "
                               "(on their last attempt, or after a cancel request)", reaped,
                               extra={"reaped": reaped})
        finally:
            self._reap_lock.release()
