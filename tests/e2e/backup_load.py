"""Load for the backup tests: ``backup_load.py producer DB`` enqueues batches of ten jobs to
the queue ``load`` until killed; ``backup_load.py consumer DB LOG`` claims and acks them,
appending each acked id to LOG (one line, flushed) once ``ack`` has returned."""

from __future__ import annotations

import sys

from persistent_queue import Queue


def main() -> None:
    role, db = sys.argv[1], sys.argv[2]
    q = Queue(db, durability="normal")
    if role == "producer":
        n = 0
        while True:
            q.enqueue_many("load", [{"n": n + i, "pad": "x" * 200} for i in range(10)])
            n += 10
    with open(sys.argv[3], "a", buffering=1) as log:
        while True:
            job = q.dequeue("load", wait=0.5)
            if job is not None:
                q.ack(job)
                log.write(f"{job.id}\n")


if __name__ == "__main__":
    main()
