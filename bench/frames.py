"""Pages written per commit: ``python -m bench.frames [--jobs N]``.

In WAL mode every commit appends each page it changed to the WAL, so the WAL's growth with
checkpoints held off counts the b-tree pages an operation writes. Prints it per commit for
this project and raw SQLite (normal durability): single enqueue, claim and ack, and per batch
of 100 claimed and acked (two commits).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile

from .systems import make_payload, open_system

FRAME_HEADER, WAL_HEADER = 24, 32


def measure(key: str, path: str, jobs: int) -> dict[str, float]:
    adapter = open_system(key, path)
    conn: sqlite3.Connection = (adapter.q.backend.dialect.conn()  # type: ignore[attr-defined]
                                if key.startswith("pq") else adapter.conn)  # type: ignore[attr-defined]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    payloads = [make_payload(i) for i in range(jobs)]
    adapter.enqueue_batch(payloads)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    frames: dict[str, float] = {}
    handles: list[object] = []
    for work in ("enqueue", "claim", "ack", "batch of 100"):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if work == "enqueue":
            for payload in payloads:
                adapter.enqueue(payload)
        elif work == "claim":
            handles = [adapter.claim() for _ in range(jobs)]
        elif work == "ack":
            for handle in handles:
                adapter.ack(handle[0])  # type: ignore[index]
        else:
            while batch := adapter.claim_batch(100):
                adapter.ack_batch([handle for handle, _ in batch])
        written = (os.path.getsize(path + "-wal") - WAL_HEADER) / (page_size + FRAME_HEADER)
        frames[work] = written / (jobs / 100 if work == "batch of 100" else jobs)
    adapter.close()
    return frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.frames", description=__doc__)
    parser.add_argument("--jobs", type=int, default=500)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pq-frames-") as workdir:
        for key in ("pq-normal", "raw-normal"):
            frames = measure(key, os.path.join(workdir, f"{key}.db"), args.jobs)
            print(f"{key}: " + ", ".join(f"{work} {count:.1f}" for work, count in frames.items())
                  + " pages per commit (batch: per 100 jobs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
