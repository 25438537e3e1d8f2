"""One process of the contention test: ``producer``, ``consumer`` or ``reader`` until a deadline.

Any exception reaching this caller is written to ``OUT/errors-<pid>.txt`` (the test wants
none); consumers write ack records (see :mod:`checker`) to ``OUT``.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from persistent_queue import Queue
from tests.reliability.checker import AckRecord, write_record


def run(role: str, q: Queue, out: Path, until: float) -> None:
    ids = out / f"enqueued-{os.getpid()}.txt"
    while time.time() < until:
        if role == "producer":
            jobs = q.enqueue_many("busy", [{"n": i} for i in range(5)])
            with ids.open("a") as handle:
                handle.write("".join(f"{j.id}\n" for j in jobs))
        elif role == "consumer":
            job = q.dequeue("busy", wait=0.2)
            if job is not None:
                claimed = time.time()
                q.ack(job)
                write_record(out, AckRecord(job.id, job.lease_token or "", claimed,
                                            job.lease_expires_at or 0.0, time.time(),
                                            os.getpid()))
        else:
            q.stats()
            q.list_jobs("busy", limit=50)
            q.throughput(window=600, bucket=60)
            q.workers()
            q.dead_letters("busy", limit=20)


def main(role: str, db: str, out: str, seconds: float) -> None:
    folder = Path(out)
    until = time.time() + seconds
    try:
        with Queue(db, durability="normal") as q:
            run(role, q, folder, until)
    except BaseException:  # noqa: BLE001 - recorded for the test
        (folder / f"errors-{os.getpid()}.txt").write_text(traceback.format_exc())
        raise


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
