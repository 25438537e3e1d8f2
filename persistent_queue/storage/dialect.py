"""What a database supplies to the shared core (:class:`~.core.SQLBackend`), and nothing more.

The core holds every rule: which rows a transition reads and writes, in what order, and what
it raises. A dialect supplies what truly differs between databases: connections and
transactions (``conn``, ``transaction``, ``atomic``), how a write runs (SQLite: group commit
and the disk reserve; PostgreSQL: deadlock retry), wake-ups (``notify``, ``wait_for_change``),
the claim and enqueue fast paths, error translation, migrations, housekeeping and health facts,
and the SQL text itself: ``queries`` holds the shared statements and the dialect's own under
one set of names. Where the two databases differ only in a statement (a row lock is
``SELECT ... FOR UPDATE`` on PostgreSQL and a plain ``SELECT`` on SQLite, whose write
transaction already holds the database), the statement is the dialect's and the rule the core's.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, TypeVar

from ..errors import StorageError, WrongConnectionKind
from ..models import JobState
from .base import NewJob

T = TypeVar("T")


class Dialect(ABC):
    """One database engine's side of the storage (see the module docstring)."""

    #: ``"sqlite"`` or ``"postgres"``: the name of the dialect's package and SQL folder.
    name: ClassVar[str]
    #: Every named statement: the shared ones and this dialect's own.
    queries: Mapping[str, str]
    #: Literal terms that let the planner use the partial index of jobs in a state (both
    #: dialects' partial indexes; PostgreSQL adds its index of done jobs).
    state_index_terms: ClassVar[Mapping[JobState, str]] = {
        JobState.READY: "state IN ('ready', 'leased') AND ",
        JobState.LEASED: "state IN ('ready', 'leased') AND ",
        JobState.WAITING: "state = 'waiting' AND ",
        JobState.CANCELLED: "state = 'cancelled' AND ",
    }
    #: Per-thread state: ``conn``, ``atomic`` (inside an ``atomic()`` block), ``cascade``.
    _local: threading.local
    busy_timeout: float

    # -- connections and transactions -------------------------------------------------------

    @abstractmethod
    def conn(self) -> Any:
        """This thread's connection (opened on first use, and again after ``fork``)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """A write transaction on this thread's connection (joins an ``atomic()`` block)."""

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Run this thread's writes inside the block in one transaction: all of them or none."""
        if self.in_atomic():
            raise StorageError("atomic() blocks cannot be nested")
        with self.transaction():
            self._local.atomic = True
            try:
                yield
            finally:
                self._local.atomic = False

    def in_atomic(self) -> bool:
        """Whether this thread is inside an ``atomic()`` block (or a commit group)."""
        return bool(getattr(self._local, "atomic", False))

    def adopt_connection(self, raw: Any) -> Any:
        """The caller's driver connection ``raw`` (of this dialect's kind), checked and ready
        to carry the core's statements in the caller's transaction (``connection=``, see
        :mod:`.external`): ``ForeignConnection`` if it reaches another database,
        ``NotInTransaction`` if a write there would commit on its own."""
        raise WrongConnectionKind(f"the {self.name} dialect cannot write on a caller's "
                                  "connection; nothing was written")

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[Any]:
        """A read transaction whose statements see one consistent state (joins ``atomic()``)."""

    @abstractmethod
    def translate_errors(self) -> AbstractContextManager[None]:
        """Turn the driver's exceptions into the library's StorageError family."""

    @abstractmethod
    def close(self) -> None:
        """Release every connection (of this process)."""

    @abstractmethod
    def schema_version(self) -> int:
        """The schema version of the store."""

    @abstractmethod
    def describe(self) -> str:
        """The database, for a repr or a message (a URL with its password masked)."""

    # -- how a write runs -------------------------------------------------------------------

    @abstractmethod
    def write(self, work: Callable[[], T], *, grouped: bool = False,
              adds_jobs: bool = False) -> T:
        """Run one write. ``grouped``: an enqueue, claim or ack, which concurrent threads may
        share a commit with; ``adds_jobs``: it stores new jobs (refused on a full disk while
        writes that settle jobs go on)."""

    @abstractmethod
    def notify(self, conn: Any, queue: str) -> None:
        """Announce (on commit) that ``queue`` may have claimable work."""

    @abstractmethod
    def wait_for_change(self, timeout: float, poll_interval: float,
                        queue: str | None = None) -> bool:
        """Block until the store changes or ``timeout`` passes; True if it changed."""

    # -- SQL the core builds or binds -------------------------------------------------------

    @abstractmethod
    def param(self, name: str) -> str:
        """The placeholder of parameter ``name`` (``:name`` or ``%(name)s``)."""

    @abstractmethod
    def array(self, values: Sequence[int]) -> Any:
        """A list of ids as one parameter (a JSON array on SQLite, an array on PostgreSQL)."""

    @abstractmethod
    def header_clause(self, index: int, key: str, value: Any, params: dict[str, Any]) -> str:
        """A ``list_jobs`` condition: header ``key`` equals ``value`` (adds its parameters)."""

    # -- the hot paths ----------------------------------------------------------------------

    @abstractmethod
    def claim_rows(self, queue: str, limit: int, visibility_timeout: float | None,
                   now: float, worker: str | None) -> list[tuple[Any, ...]]:
        """Lease up to ``limit`` jobs in one statement for ``worker``; rows read by position."""

    @abstractmethod
    def has_claimable(self, queue: str, now: float) -> bool:
        """Whether a claim might find a job now (read-only)."""

    @abstractmethod
    def insert_one(self, queue: str, job: NewJob,
                   now: float) -> tuple[int, int, float | None] | None:
        """The common enqueue in one statement: a job for an existing, unbounded queue, as
        ``(id, effective max_attempts, effective timeout)``; None to take the transactional
        path instead."""

    @abstractmethod
    def insert_jobs(self, conn: Any, queue: str, jobs: Sequence[NewJob],
                    now: float) -> list[int]:
        """Store plain jobs (no workflow options) inside a transaction; their ids in order."""

    @abstractmethod
    def insert_uniform(self, conn: Any, queue: str, template: NewJob,
                       payload_jsons: Sequence[str], now: float) -> list[int]:
        """Store jobs that share all but their payload inside a transaction; ids in order."""

    @abstractmethod
    def ack_many_params(self, leases: Sequence[tuple[int, str]], now: float) -> dict[str, Any]:
        """The parameters of the ``ack_many`` statement."""

    # -- housekeeping and health ------------------------------------------------------------

    @abstractmethod
    def vacuum(self) -> None:
        """Return freed space after a cleanup."""

    def after_cleanup(self) -> None:  # noqa: B027 - optional: most dialects have nothing
        """Called at the end of every cleanup (SQLite puts its disk reserve back)."""

    @abstractmethod
    def quick_check(self) -> list[str]:
        """Structural problems found in the store (empty when it is sound)."""

    @abstractmethod
    def database_facts(self, *, integrity: bool = False) -> dict[str, Any]:
        """Engine facts for health checks."""

    @abstractmethod
    def execute_read(self, query: str, params: Any = ()) -> list[Any]:
        """Run a read-only statement of the library's own (diagnostics, EXPLAIN)."""
