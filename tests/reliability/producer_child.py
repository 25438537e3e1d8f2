"""A producer enqueueing keys ``PREFIX-0 ..`` with dedup keys, resuming after a crash.

Each confirmed enqueue (the library returned: the client's "2xx") appends ``key id`` to
``OUT``. On restart it retries from the first key it has no confirmation for, as a client
retrying a request whose answer it never got.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from persistent_queue import Queue


def main(db: str, prefix: str, count: int, out: str, pause: float) -> None:
    path = Path(out)
    done = 0
    if path.exists():
        done = sum(1 for line in path.read_text().splitlines(keepends=True)
                   if line.endswith("\n"))
    with Queue(db, durability="full") as q:
        for index in range(done, count):
            key = f"{prefix}-{index}"
            job = q.enqueue("dedup", {"key": key}, dedup_key=key)
            fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, f"{key} {job.id}\n".encode())
            os.close(fd)
            time.sleep(pause)  # a client's send rate, so the kills land mid-stream


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5]))
