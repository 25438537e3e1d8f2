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
    InvalidArgument,
    InvalidInput,
    InvalidJobState,
    InvalidPayload,
    InvalidQueueName,
    JobNotFound,
    LeaseLost,
    PayloadTooLarge,
    QueueAlreadyExists,
    QueueError,
    QueueFull,
    QueueNotEmpty,
    QueueNotFound,
    Retry,
    SchemaTooNew,
    StorageError,
    StorageFull,
)
from .models import (
    DeadLetter,
    Job,
    JobEvent,
    JobState,
    QueueInfo,
    QueueStats,
    ThroughputPoint,
    WorkerInfo,
)
from .queue import Queue
from .retry import RetryPolicy

__version__ = "0.1.0"

__all__ = [
    "DatabaseBusy",
    "DeadLetter",
    "InvalidArgument",
    "InvalidInput",
    "InvalidJobState",
    "InvalidPayload",
    "InvalidQueueName",
    "Job",
    "JobEvent",
    "JobNotFound",
    "JobState",
    "LeaseLost",
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
    "SchemaTooNew",
    "ThroughputPoint",
    "WorkerInfo",
    "StorageError",
    "StorageFull",
    "__version__",
]
