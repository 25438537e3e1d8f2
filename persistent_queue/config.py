"""Every default of the library in one place, each documented.

Processes (consumer, producer, API, consoles) read their settings with the precedence
command-line flag > ``PQ_*`` environment variable > the defaults below.
"""

from __future__ import annotations

import os
import re
from typing import Final, Literal

Durability = Literal["full", "normal"]

#: Where the database lives unless ``--db`` / ``PQ_DB`` says otherwise.
DEFAULT_DB_PATH: Final = os.environ.get("PQ_DB", "data/queue.db")

#: ``full``: an acknowledged write survives power loss (``synchronous=FULL``).
#: ``normal``: it survives a process crash; a power cut may lose the last commits.
DEFAULT_DURABILITY: Final[Durability] = "full"

#: Seconds a claimed job stays invisible to other consumers unless acked, nacked or extended.
DEFAULT_VISIBILITY_TIMEOUT: Final = 30.0

#: Deliveries before a failing (or consumer-crashing) job moves to the dead-letter table.
DEFAULT_MAX_ATTEMPTS: Final = 5

#: Largest encoded payload accepted, in bytes (1 MiB).
DEFAULT_MAX_PAYLOAD_BYTES: Final = 1024 * 1024

#: Deepest nesting of arrays/objects accepted in a payload or header value.
MAX_JSON_DEPTH: Final = 64

#: Seconds a writer waits for SQLite's write lock before giving up with DatabaseBusy.
DEFAULT_BUSY_TIMEOUT: Final = 60.0

#: The WAL file of a quiet database is brought back under this size: a WAL grown behind a long
#: reader, or by a burst of work, does not keep its size forever. In normal durability the
#: background checkpoint thread truncates it once commits stop; in full durability it is
#: SQLite's ``journal_size_limit``, applied whenever a checkpoint resets the WAL.
WAL_SIZE_LIMIT: Final = 4 * 1024 * 1024

#: Bytes kept free beside a SQLite database (a ``<db>-reserve`` file, see
#: :mod:`.disk_reserve`) for claims and acks once enqueues have filled its disk: enough to
#: checkpoint a WAL at SQLite's automatic checkpoint (1,000 pages), and at most an eighth of
#: the file system. ``PQ_DISK_RESERVE_BYTES=0`` keeps no reserve.
def _reserve_bytes(text: str) -> int:
    if not text.strip():
        return 4 * 1024 * 1024
    if not text.strip().isdigit():
        raise ValueError(f"PQ_DISK_RESERVE_BYTES must be a whole number of bytes (0 for no "
                         f"reserve), not {text!r}")
    return int(text)


DISK_RESERVE_BYTES: Final = _reserve_bytes(os.environ.get("PQ_DISK_RESERVE_BYTES", ""))

#: Retry backoff after a nack: ``min(cap, base * 2 ** (attempts - 1))``, jittered to 50-100 %.
DEFAULT_BACKOFF_BASE: Final = 1.0
DEFAULT_BACKOFF_CAP: Final = 300.0

#: How often a waiting ``dequeue(wait=...)`` checks the database for new commits (seconds).
DEFAULT_POLL_INTERVAL: Final = 0.025

#: A consumer held back by a queue's limits (flow control) looks again at least this often
#: (seconds), besides when a commit or an announcement wakes it and when a limit lets go.
FLOW_RECHECK: Final = 1.0

#: Exhausted expired leases are moved to the dead-letter table at most this often (seconds).
REAP_INTERVAL: Final = 1.0

#: A running worker whose heartbeat is older than this many seconds is shown as lost.
WORKER_STALE_AFTER: Final = 60.0

#: Stopped and lost workers last heard of longer ago than this (seconds: 7 days) are removed
#: from the registry by the janitor (``Queue.prune_workers``, ``--workers-older-than``).
WORKER_RETENTION: Final = 7 * 24 * 3600.0

#: The window of a queue's failure-rate alert (seconds): the share of the attempts ended in
#: the last 15 minutes that failed (``Queue.alerts``).
ALERT_FAILURE_WINDOW: Final = 15 * 60.0

#: Largest JSON-encoded task result stored, in bytes (1 MiB); a larger one fails the attempt.
MAX_RESULT_BYTES: Final = 1024 * 1024

#: Seconds a done job's stored result is kept (7 days): cleanup (the janitor) deletes done
#: jobs holding a result older than this, besides done jobs older than its --older-than.
RESULT_TTL: Final = 7 * 24 * 3600.0

#: Bounds on user numbers.
PRIORITY_MIN: Final = -(2**31)
PRIORITY_MAX: Final = 2**31 - 1
MAX_ATTEMPTS_LIMIT: Final = 1_000_000
MAX_VISIBILITY_TIMEOUT: Final = 12 * 3600.0  # as SQS
MAX_DELAY: Final = 366 * 24 * 3600.0
MAX_BATCH: Final = 10_000
#: The largest bound of a bounded queue (``max_size``): what a 32-bit column holds (PostgreSQL).
MAX_QUEUE_SIZE: Final = 2**31 - 1
MAX_WAIT: Final = 3600.0

#: Names of queues and topics.
NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
#: Header keys (kept simple so they can be used in filters and JSON paths).
HEADER_KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
MAX_HEADERS: Final = 64
MAX_HEADER_VALUE_CHARS: Final = 1024
MAX_ERROR_CHARS: Final = 16 * 1024
#: Longest run-time limit of a job or queue (``timeout=``), in seconds: 366 days.
MAX_TIMEOUT: Final = 366 * 24 * 3600.0
#: Longest progress message stored with ``set_progress`` (longer ones are truncated).
MAX_PROGRESS_MESSAGE_CHARS: Final = 1024
#: Longest cancellation reason stored with ``cancel`` (longer ones are truncated).
MAX_REASON_CHARS: Final = 1024
#: Longest worker id stored as ``claimed_by`` (``dequeue(worker=...)``).
MAX_WORKER_ID_CHARS: Final = 256
#: How often ``TaskJob.raise_if_cancelled()`` reads the database when the worker gave it no
#: cancellation event (seconds).
CANCEL_CHECK_INTERVAL: Final = 0.5

#: Workflows. Seconds after a deduplicated job is done during which its key still answers
#: with that job (0: only while it is unfinished).
DEFAULT_DEDUP_WINDOW: Final = 0.0
MAX_DEDUP_KEY_CHARS: Final = 256
#: Most dependencies one job may wait for.
MAX_DEPENDENCIES: Final = 1000
#: A scheduler process looks for due schedules at least this often (seconds).
SCHEDULER_INTERVAL: Final = 1.0
#: Shortest ``every=`` of a recurring schedule (seconds).
MIN_SCHEDULE_EVERY: Final = 0.01
