"""persistent-queue: a crash-safe job queue in one SQLite file.

>>> from persistent_queue import Queue
>>> q = Queue("data/queue.db")
>>> job = q.enqueue("emails", {"to": "a@b.c"})
>>> claimed = q.dequeue("emails", visibility_timeout=30)
>>> q.ack(claimed)

Tasks: ``@q.task`` declares a function, ``f.delay(...)`` stores a job a worker runs, and
``f.delay(...).result(timeout=10)`` waits for what it returned (see :mod:`.tasks`).
"""

from __future__ import annotations

from .aio import AsyncQueue
from .errors import (
    DatabaseBusy,
    DatabaseMissing,
    ForeignConnection,
    InvalidArgument,
    InvalidDependency,
    InvalidInput,
    InvalidJobState,
    InvalidPayload,
    InvalidQueueName,
    JobCancelled,
    JobNotFound,
    LeaseLost,
    MissingDependency,
    NoCurrentJob,
    NoSubscribers,
    NotInTransaction,
    PayloadTooLarge,
    QueueAlreadyExists,
    QueueError,
    QueueFull,
    QueueNotEmpty,
    QueueNotFound,
    ResultTimeout,
    Retry,
    ScheduleNotFound,
    SchemaTooNew,
    StorageError,
    StorageFull,
    TaskFailed,
    UnknownTask,
    UnusableConnection,
    WrongConnectionKind,
)
from .models import (
    Alert,
    DeadLetter,
    DeletedQueue,
    Job,
    JobEvent,
    JobState,
    Progress,
    QueueInfo,
    QueueStats,
    RunningJob,
    ScheduleInfo,
    Subscription,
    ThroughputPoint,
    WorkerInfo,
)
from .queue import Queue
from .retry import RetryPolicy
from .tasks import Task, TaskHandle, TaskJob, TaskOptions, TaskRegistry, current_job

__version__ = "0.1.0"

__all__ = [
    "Alert",
    "AsyncQueue",
    "DatabaseBusy",
    "DatabaseMissing",
    "DeadLetter",
    "DeletedQueue",
    "ForeignConnection",
    "InvalidArgument",
    "InvalidDependency",
    "InvalidInput",
    "InvalidJobState",
    "InvalidPayload",
    "InvalidQueueName",
    "Job",
    "JobCancelled",
    "JobEvent",
    "JobNotFound",
    "JobState",
    "LeaseLost",
    "MissingDependency",
    "NoCurrentJob",
    "NoSubscribers",
    "NotInTransaction",
    "PayloadTooLarge",
    "Progress",
    "Queue",
    "QueueAlreadyExists",
    "QueueError",
    "QueueFull",
    "QueueInfo",
    "QueueNotEmpty",
    "QueueNotFound",
    "QueueStats",
    "ResultTimeout",
    "Retry",
    "RetryPolicy",
    "RunningJob",
    "ScheduleInfo",
    "ScheduleNotFound",
    "SchemaTooNew",
    "ThroughputPoint",
    "WorkerInfo",
    "StorageError",
    "StorageFull",
    "Subscription",
    "Task",
    "TaskFailed",
    "TaskHandle",
    "TaskJob",
    "TaskOptions",
    "TaskRegistry",
    "UnknownTask",
    "UnusableConnection",
    "WrongConnectionKind",
    "__version__",
    "current_job",
]
