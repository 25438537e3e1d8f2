"""A worker-like parent for the process executor's tests:
``python -m tests.integration.executor_parent DIR PAYLOAD_JSON...``.

Starts a :class:`~persistent_queue.executors.ProcessExecutor` with one slot per payload (the
handler ``tests.integration.executor_handlers:act``), records SIGTERM and SIGINT as the worker
does (a flag, nothing else), writes ``DIR/pids.json`` (its children and its forkserver), runs
one job per payload at once, one per slot, and prints ``{"outcomes": [kind...], "signals":
[...]}``.
"""

from __future__ import annotations

import json
import multiprocessing.forkserver
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from persistent_queue import Queue
from persistent_queue.executors import ProcessExecutor


def main(folder: Path, payloads: list[Any]) -> int:
    seen: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: seen.append(number))
    with Queue(folder / "queue.db", durability="normal") as store:
        jobs = []
        for payload in payloads:
            store.enqueue("work", payload)
            job = store.dequeue("work", visibility_timeout=600)
            assert job is not None
            jobs.append(job)
        executor = ProcessExecutor(size=len(payloads), db=str(folder / "queue.db"),
                                   queue_options={"durability": "normal"},
                                   handler="tests.integration.executor_handlers:act", app=None,
                                   worker_id="parent")
        executor.start()
        forkserver = multiprocessing.forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
        pids = {"parent": os.getpid(), "children": executor.pids(), "forkserver": forkserver}
        (folder / "pids.json.tmp").write_text(json.dumps(pids))
        os.replace(folder / "pids.json.tmp", folder / "pids.json")
        outcomes: list[str] = [""] * len(jobs)
        cancel = threading.Event()

        def run(slot: int) -> None:
            outcomes[slot] = executor.run(jobs[slot], slot=slot, timeout=None, cancel=cancel,
                                          grace=0).kind

        threads = [threading.Thread(target=run, args=(slot,)) for slot in range(len(jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        executor.shutdown()
    print(json.dumps({"outcomes": outcomes, "signals": seen}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), [json.loads(arg) for arg in sys.argv[2:]]))
