"""The one exception tree of persistent-queue.

Every error the library raises on purpose is a :class:`QueueError`. Input errors are also
:class:`ValueError` and lookup errors also :class:`LookupError`, so callers may catch either the
specific class or the builtin family.
"""

from __future__ import annotations


class QueueError(Exception):
    """Root of every error persistent-queue raises."""


class InvalidInput(QueueError, ValueError):
    """An argument was rejected before anything was stored."""


class InvalidQueueName(InvalidInput):
    """A queue or topic name does not match ``^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$``."""


class InvalidPayload(InvalidInput):
    """A payload or header set is not storable JSON (NaN, bad Unicode, too deep, ...)."""


class PayloadTooLarge(InvalidPayload):
    """An encoded payload is larger than the configured limit."""


class InvalidArgument(InvalidInput):
    """A number or option is out of range, not finite, or of the wrong type."""


class MissingDependency(InvalidInput):
    """An optional dependency is not installed (a PostgreSQL URL without psycopg, say); the
    message names the extra that brings it: ``pip install 'persistent-queue[postgres]'``."""


class UnusableConnection(InvalidInput):
    """A ``connection=`` (the caller's own, to write in its transaction) cannot carry the
    queue's write: closed, busy, or given inside ``atomic()``; nothing was written, and the
    caller's transaction is as it was."""


class WrongConnectionKind(UnusableConnection):
    """``connection=`` is not a connection this queue's database can use: not a ``sqlite3``,
    psycopg 3 or SQLAlchemy connection or session, or one for the other backend (a psycopg
    connection for a SQLite queue)."""


class ForeignConnection(UnusableConnection):
    """``connection=`` reaches another database than the queue's: another SQLite file, or
    another PostgreSQL database or server (or a ``search_path`` without the queue's tables)."""


class NotInTransaction(UnusableConnection):
    """``connection=`` is in autocommit mode outside a transaction, or its transaction has
    failed: the queue's write would commit on its own, not with the caller's writes."""


class JobNotFound(QueueError, LookupError):
    """No job (live or dead-lettered) has that id."""


class QueueNotFound(QueueError, LookupError):
    """No queue has that name."""


class QueueAlreadyExists(QueueError):
    """``create_queue`` was asked for a name that exists (pass ``exist_ok=True`` to allow it)."""


class QueueNotEmpty(QueueError):
    """A queue still holds unfinished jobs and ``force`` was not given."""


class QueueFull(QueueError):
    """The queue holds ``max_size`` ready or leased jobs; nothing was enqueued."""

    def __init__(self, message: str, queue: str | None = None) -> None:
        super().__init__(message)
        self.queue = queue


class InvalidDependency(InvalidInput):
    """A ``depends_on`` id names no existing job (so no dependency cycle can be formed)."""


class NoSubscribers(QueueError, LookupError):
    """A job was published to a topic that no queue subscribes to; nothing was stored."""


class ScheduleNotFound(QueueError, LookupError):
    """No recurring schedule has that name."""


class LeaseLost(QueueError):
    """The caller no longer holds the job's lease (expired, re-claimed or already finished)."""


class InvalidJobState(QueueError):
    """The job is in a state where that operation makes no sense (dead-lettering a done job)."""


class TaskFailed(QueueError):
    """A task's job was dead-lettered or cancelled, so it has no result: raised by
    ``Queue.result`` and ``TaskHandle.result``. ``error`` is the last error (else the
    dead-letter reason, or for a cancelled job the cancellation's reason or "cancelled")."""

    def __init__(self, message: str, *, job_id: int, error: str | None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.error = error


class JobCancelled(QueueError):
    """The running job's cancellation was requested: raised inside its handler by
    ``raise_if_cancelled()`` and ``set_progress()`` (the worker then confirms the cancel).
    ``job_id`` is the job's id and ``reason`` the reason given, if any."""

    def __init__(self, message: str, *, job_id: int, reason: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.reason = reason


class UnknownTask(QueueError, LookupError):
    """No task of that name is registered (on the queue's registry, or the worker's)."""


class NoCurrentJob(QueueError, LookupError):
    """``current_job()`` was called outside a task that a worker is running."""


class ResultTimeout(QueueError, TimeoutError):
    """``Queue.result(job_id, timeout=...)`` waited and the job did not finish in time."""


class StorageError(QueueError):
    """The database failed: full disk, read-only file, corruption or a lock held too long."""


class DatabaseBusy(StorageError):
    """Another connection held the write lock for longer than the busy timeout."""


class StorageFull(StorageError):
    """The database or its disk is full; nothing was written."""


class DatabaseMissing(StorageError):
    """The database file was deleted or replaced under the running process; nothing was written.

    The process's open connections still reach the old (unlinked) file, so a commit there
    would be lost at restart: every write fails with this error until the process restarts.
    """


class SchemaTooNew(StorageError):
    """The database was written by a newer persistent-queue whose schema this one cannot read."""


class SupervisorUnavailable(QueueError):
    """supervisord does not answer on its socket (not running, or another socket path)."""


class SupervisorRefused(QueueError):
    """supervisord answered a start, stop or restart with a fault (no such program, ...)."""


class BackupError(QueueError):
    """A backup or restore could not be made; the destination is as it was."""


class BackupRefused(BackupError, InvalidInput):
    """A backup or restore was refused before anything was written: a missing source, a
    destination that exists or lies in a missing folder, a source that is not a
    persistent-queue database, fails its integrity check or has a newer schema."""


class DatabaseInUse(BackupError):
    """A restore was refused: another process has the target database open (or a worker's
    heartbeat says it runs); stop the processes first."""


class Retry(Exception):  # noqa: N818 - the name is the intent: ``raise Retry(delay=10)``
    """Raised by a handler to ask for the job to be retried after ``delay`` seconds.

    The retry counts as an attempt; when attempts are used up the job is dead-lettered.
    """

    def __init__(self, delay: float | None = None, reason: str = "retry requested") -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason
