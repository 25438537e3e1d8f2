"""Run by ``test_disk_full_tmpfs.py`` inside ``unshare -m``: a real full disk, then a drain.

    unshare -m --propagation private python -m tests.reliability.disk_full_child MODE MNT OUT

Mounts a 2 MiB tmpfs on ``MNT`` (exit 77 if the system refuses: the test then skips), puts
the database there and fills the disk: with ``MODE=enqueues`` by enqueueing until
``StorageFull``, with ``MODE=filler`` by a file of its own after a few enqueues. With
``MODE=pressure`` it fills the disk with enqueues, then drains every accepted job while three
producer processes keep enqueuing. Otherwise, with
the disk still full: the real ``api.py`` is asked to enqueue, dequeue and ack; the real
``consumer.py`` drains every job; ``scripts/cleanup.py --vacuum`` deletes them. Everything seen
is written to ``OUT/result.json`` (``OUT`` is outside the tmpfs), for the test to judge.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from persistent_queue import Queue, StorageFull
from tests.support import ROOT, wait_for

RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
PAD = "x" * 200


def fill_with_enqueues(q: Queue, result: dict[str, Any]) -> list[int]:
    accepted: list[int] = []
    try:
        for n in range(1_000_000):
            accepted.append(q.enqueue("full", {"n": n, "pad": PAD}).id)
    except StorageFull as exc:
        result["enqueue_error"] = str(exc)
    return accepted


def fill_with_a_file(q: Queue, mnt: Path, result: dict[str, Any]) -> list[int]:
    accepted = [q.enqueue("full", {"n": n, "pad": PAD}).id for n in range(40)]
    assert q.backend.dialect.truncate_wal()  # type: ignore[attr-defined]
    filler = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(filler, b"\0" * 4096)
    except OSError as exc:
        result["filler_error"] = exc.strerror
    finally:
        os.close(filler)
    try:
        accepted.append(q.enqueue("full", {"n": -1, "pad": PAD}).id)
    except StorageFull as exc:
        result["enqueue_error"] = str(exc)
    return accepted


def api_on_a_full_disk(db: Path, out: Path, result: dict[str, Any]) -> None:
    """The real server: 507 for a new job; a claim and an ack still answer 200."""
    log = out / "api.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "api.py"), "--port", "0", "--db", str(db)],
            cwd=out, stdout=output, stderr=subprocess.STDOUT,
            env={**os.environ, "PQ_LOG_DIR": str(out / "api-logs")})
    try:
        def bound_port() -> int | None:
            if server.poll() is not None:
                raise RuntimeError(f"api.py exited: {log.read_text()[-2000:]}")
            found = RUNNING.search(log.read_text(errors="replace"))
            return int(found.group(1)) if found else None

        port = wait_for(bound_port, timeout=60, interval=0.05, message="api.py to listen")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            enqueued = http.post("/enqueue", json={"queue": "full", "payload": PAD})
            claimed = http.post("/dequeue", json={"queue": "full"})
            result["api"] = {"enqueue": enqueued.status_code, "enqueue_body": enqueued.text,
                             "dequeue": claimed.status_code}
            if claimed.status_code == 200:
                job = claimed.json()
                acked = http.post("/ack", json={"id": job["id"],
                                                "lease_token": job["lease_token"]})
                result["api"]["ack"] = acked.status_code
                result["api_acked"] = job["id"]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def drain_with_consumer(db: Path, out: Path, jobs: int, result: dict[str, Any]) -> None:
    """The real consumer process claims and acks ``jobs`` jobs, then exits."""
    started = time.monotonic()
    with (out / "consumer.log").open("wb") as output:
        consumer = subprocess.Popen(
            [sys.executable, str(ROOT / "consumer.py"), "--db", str(db), "--queue", "full",
             "--max-jobs", str(jobs), "--wait", "0.2", "--log-dir", str(out / "logs")],
            cwd=out, stdout=output, stderr=subprocess.STDOUT)
    try:
        result["consumer_exit"] = consumer.wait(timeout=60)
    except subprocess.TimeoutExpired:
        consumer.kill()
        consumer.wait()
        result["consumer_exit"] = "timed out"
    result["consumer_seconds"] = round(time.monotonic() - started, 2)


PRESSURE_SECONDS = 5.0
PRODUCER = """
import json, sys
from pathlib import Path
from persistent_queue import Queue, StorageFull
db, report, stop = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
stored = refused = 0
with Queue(db) as q:
    while not stop.exists():
        try:
            q.enqueue_many("full", [{"pad": "x" * 200}] * 20)
            stored += 1
        except StorageFull:
            refused += 1
        report.write_text(json.dumps({"stored": stored, "refused": refused}))
"""


def drain_under_enqueue_pressure(db: Path, out: Path, accepted: list[int],
                                 result: dict[str, Any]) -> None:
    """Three processes keep enqueuing batches while this one claims and acks every job
    accepted before the disk filled (oldest first: they come out first) and what the
    producers add, for :data:`PRESSURE_SECONDS` at least."""
    stop = out / "stop-producers"
    reports = [out / f"producer-{n}.json" for n in range(3)]
    producers = [subprocess.Popen([sys.executable, "-c", PRODUCER, str(db), str(path),
                                   str(stop)], cwd=ROOT) for path in reports]
    try:
        wait_for(lambda: all(path.exists() for path in reports), timeout=60,
                 message="every producer to try an enqueue")
        wanted, done, failures = set(accepted), set(), 0
        started = time.monotonic()
        with Queue(db) as q:
            # Every accepted job, and whatever the producers manage to add, for 5 s at least.
            while (not wanted <= done or time.monotonic() - started < PRESSURE_SECONDS) \
                    and time.monotonic() - started < 60:
                try:
                    job = q.dequeue("full", visibility_timeout=60)
                    if job is not None:
                        q.ack(job)
                        done.add(job.id)
                except StorageFull:
                    failures += 1
    finally:
        stop.touch()
        for producer in producers:
            producer.wait(timeout=60)
    counts = [json.loads(path.read_text()) for path in reports]
    result["pressure"] = {
        "accepted_done": len(wanted & done), "done": len(done),
        "claim_or_ack_failures": failures,
        "seconds": round(time.monotonic() - started, 2),
        "batches_stored": sum(c["stored"] for c in counts),
        "batches_refused": sum(c["refused"] for c in counts)}


def main(mode: str, mnt: Path, out: Path) -> int:
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        print(f"cannot mount a tmpfs: {mounted.stderr.strip()}", file=sys.stderr)
        return 77
    db = mnt / "queue.db"
    result: dict[str, Any] = {"mode": mode}
    with Queue(db) as q:
        q.create_queue("full")
        accepted = fill_with_a_file(q, mnt, result) if mode == "filler" else \
            fill_with_enqueues(q, result)
        result["accepted"] = accepted
        try:
            q.enqueue_many("full", [{"pad": PAD}] * 20)
        except StorageFull:
            result["batch_refused"] = True
        result["free_bytes_when_full"] = _free(mnt)
        if mode != "pressure":
            # While this connection stays open the WAL keeps its space (the last connection
            # to close would checkpoint it away and free the disk).
            api_on_a_full_disk(db, out, result)
    if mode == "pressure":
        drain_under_enqueue_pressure(db, out, accepted, result)
        (out / "result.json").write_text(json.dumps(result, default=str))
        return 0
    drain_with_consumer(db, out, len(accepted) - ("api_acked" in result), result)
    with Queue(db) as q:
        result["done"] = sorted(j.id for j in q.list_jobs("full", state="done", limit=10_000))
        result["stats"] = dataclasses.asdict(q.stats("full"))
        result["unfinished"] = [j.id for j in q.list_jobs("full", limit=10_000)
                                if j.state.value != "done"]
        result["free_bytes_after_drain"] = _free(mnt)
        try:
            q.enqueue("full", {"pad": PAD})
            result["enqueue_after_drain"] = "accepted"
        except StorageFull:
            result["enqueue_after_drain"] = "refused"
    cleanup = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cleanup.py"), "--db", str(db),
         "--older-than", "0", "--vacuum"], capture_output=True, text=True, check=False)
    result["cleanup"] = {"exit": cleanup.returncode, "stdout": cleanup.stdout,
                         "stderr": cleanup.stderr[-2000:]}
    if mode == "filler":
        (mnt / "filler").unlink()  # space returns: new jobs are taken again
        with Queue(db) as q:
            result["resumed"] = q.enqueue("full", {"pad": PAD}).id
    with Queue(db) as q:
        result["integrity"] = q.backend.database_facts(integrity=True)["integrity"]
    result["files"] = {p.name: p.stat().st_size for p in mnt.iterdir()}
    (out / "result.json").write_text(json.dumps(result, default=str))
    return 0


def _free(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])))
