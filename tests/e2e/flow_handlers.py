"""A handler for ``consumer.py --handler tests.e2e.flow_handlers:record`` in the flow-control
process tests: it records each job it runs in ``$PQ_FLOW_DIR/<pid>.jsonl`` (one file per
process, one line per job, written whole) and sleeps ``payload["sleep"]`` seconds."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from persistent_queue import Job

_lock = threading.Lock()


def record(job: Job) -> None:
    """Run ``job``: note its start, sleep, note its end (wall-clock epoch seconds)."""
    started = time.time()
    payload: dict[str, Any] = job.payload
    time.sleep(float(payload.get("sleep", 0)))
    line = json.dumps({"id": job.id, "n": payload.get("n"), "group": job.group_key,
                       "lease_end": job.lease_expires_at, "start": started,
                       "end": time.time(), "pid": os.getpid()})
    with _lock, (Path(os.environ["PQ_FLOW_DIR"]) / f"{os.getpid()}.jsonl").open("a") as out:
        out.write(line + "\n")


def records(folder: Path) -> list[dict[str, Any]]:
    """Every job recorded in ``folder`` by any process."""
    found = []
    for path in folder.glob("*.jsonl"):
        found += [json.loads(line) for line in path.read_text().splitlines() if line]
    return found
