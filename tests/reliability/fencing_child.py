"""Consumer A of the fencing test, driven over stdin/stdout one JSON line at a time.

Commands: ``claim`` (prints the job id), ``ack``, ``extend``, ``nack``: each prints the name of
the exception raised (or ``ok``). The child does not know it was stopped: that is the point.
"""

from __future__ import annotations

import json
import sys

from persistent_queue import Queue


def main(db: str, queue: str, visibility_timeout: float) -> None:
    job = None
    with Queue(db, durability="normal") as q:
        for line in sys.stdin:
            command = line.strip()
            try:
                if command == "claim":
                    job = q.dequeue(queue, visibility_timeout=visibility_timeout, wait=30)
                    answer = str(job.id if job else None)
                elif command == "ack":
                    q.ack(job)
                    answer = "ok"
                elif command == "extend":
                    q.extend(job, 30)
                    answer = "ok"
                elif command == "nack":
                    q.nack(job, error="A failed", delay=0)
                    answer = "ok"
                else:
                    break
            except Exception as exc:  # noqa: BLE001 - reported to the test by name
                answer = type(exc).__name__
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
