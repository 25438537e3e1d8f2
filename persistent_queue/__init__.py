"""persistent-queue: a crash-safe job queue in one SQLite file.

>>> from persistent_queue import Queue
>>> q = Queue("data/queue.db")
>>> job = q.enqueue("emails", {"to": "a@b.c"})
>>> claimed = q.dequeue("emails", visibility_timeout=30)
>>> q.ack(claimed)
"""

from __future__ import annotations

from .errors import (
    DatabaseBusy,
    DatabaseMissing,
    InvalidArgument,
    InvalidDependency,
    InvalidInput,
    InvalidJobState,
    InvalidPayload,
    InvalidQueueName,
    JobNotFound,
    LeaseLost,
    MissingDependency,
    NoSubscribers,
    PayloadTooLarge,
    QueueAlreadyExists,
    QueueError,
    QueueFull,
    QueueNotEmpty,
    QueueNotFound,
    Retry,
    ScheduleNotFound,
    SchemaTooNew,
    StorageError,
    StorageFull,
)
from .models import (
    DeadLetter,
    DeletedQueue,
    Job,
    JobEvent,
    JobState,
    QueueInfo,
    QueueStats,
    ScheduleInfo,
    Subscription,
    ThroughputPoint,
    WorkerInfo,
)
from .queue import Queue
from .retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "DatabaseBusy",
    "DatabaseMissing",
    "DeadLetter",
    "DeletedQueue",
    "InvalidArgument",
    "InvalidDependency",
    "InvalidInput",
    "InvalidJobState",
    "InvalidPayload",
    "InvalidQueueName",
    "Job",
    "JobEvent",
    "JobNotFound",
    "JobState",
    "LeaseLost",
    "MissingDependency",
    "NoSubscribers",
    "PayloadTooLarge",
    "Queue",
    "QueueAlreadyExists",
    "QueueError",
    "QueueFull",
    "QueueInfo",
    "QueueNotEmpty",
    "QueueNotFound",
    "QueueStats",
    "Retry",
    "RetryPolicy",
    "ScheduleInfo",
    "ScheduleNotFound",
    "SchemaTooNew",
    "ThroughputPoint",
    "WorkerInfo",
    "StorageError",
    "StorageFull",
    "Subscription",
    "__version__",
]
