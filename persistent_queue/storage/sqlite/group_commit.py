"""Group commit: concurrent writes from the threads of one process share one transaction.

With ``durability="full"`` every commit waits for an fsync (milliseconds on most disks), so
threads that each enqueue one job (an API server's request handlers) or claim and ack one
(a consumer's job threads) spend their time queueing for the disk. Here they queue for a
*leader* instead: the first thread to arrive runs alone, exactly as without group commit;
while it commits, the next requests gather; the first of them leads the next group and runs
all of them in one transaction (each request in its own savepoint, so one request's error
fails only that request), then hands the results and exceptions back to each caller.
Nothing is reported as stored before its transaction has committed, so a crash loses only
requests whose callers were never answered.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: (succeeded, the work's value or the exception it raised), one per request of a group.
Outcome = tuple[bool, Any]


class _Request(Generic[T]):
    __slots__ = ("work", "done", "lead", "ok", "value")

    def __init__(self, work: Callable[[], T]) -> None:
        self.work = work
        self.done = threading.Event()
        self.lead = False  # set with `done` when this request's thread must lead a group
        self.ok = False
        self.value: Any = None


class GroupCommit:
    """Runs ``submit``-ted work alone or in groups, one group at a time per process.

    Args:
        run_group: runs several works in one transaction, each isolated (a savepoint), and
            returns one :data:`Outcome` per work in order. It raises only if the group as a
            whole failed (the commit itself); then every request of the group gets that error.
    """

    def __init__(self, run_group: Callable[[Sequence[Callable[[], Any]]], list[Outcome]]) -> None:
        self._run_group = run_group
        self._lock = threading.Lock()
        self._pending: list[_Request[Any]] = []
        self._leading = False
        # A forked child starts with no leader and a fresh lock (another thread of the parent
        # may have held this one at the moment of the fork).
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reset(ref()))
        self.groups = 0  # groups of two or more requests run so far (for tests and metrics)
        self.grouped = 0  # requests that ran in such groups

    def submit(self, work: Callable[[], T]) -> T:
        """Run ``work`` (which writes and commits on its own when it runs alone); its value."""
        with self._lock:
            alone = not self._leading
            if alone:
                self._leading = True
            else:
                request: _Request[T] = _Request(work)
                self._pending.append(request)
        if alone:
            # Nobody is writing: run alone, with no request object or event to make.
            try:
                return work()
            finally:
                self._pass_lead()
        request.done.wait()
        if not request.lead:
            return self._result(request)
        self._lead()
        return self._result(request)

    @staticmethod
    def _result(request: _Request[T]) -> T:
        if request.ok:
            value: T = request.value
            return value
        raise request.value

    def _lead(self) -> None:
        """Run every pending request (ours among them), answer them, pass the lead on."""
        with self._lock:
            group, self._pending = self._pending, []
        try:
            if len(group) == 1:
                request = group[0]
                try:
                    request.value, request.ok = request.work(), True
                except BaseException as exc:  # noqa: BLE001 - handed to its caller
                    request.value = exc
            else:
                try:
                    outcomes = self._run_group([request.work for request in group])
                except BaseException as exc:  # noqa: BLE001 - the group failed as a whole
                    outcomes = [(False, exc)] * len(group)
                for request, (ok, value) in zip(group, outcomes, strict=True):
                    request.ok, request.value = ok, value
                self.groups += 1
                self.grouped += len(group)
        finally:
            self._pass_lead()
            for request in group:
                if not request.done.is_set():
                    request.done.set()

    def _pass_lead(self) -> None:
        """Wake the first request that arrived meanwhile to lead the next group, if any."""
        with self._lock:
            if self._pending:
                successor = self._pending[0]
                successor.lead = True
                successor.done.set()
            else:
                self._leading = False


def _reset(group: GroupCommit | None) -> None:
    if group is not None:
        group._lock = threading.Lock()  # noqa: SLF001 - the group's own fork handler
        group._pending, group._leading = [], False  # noqa: SLF001
