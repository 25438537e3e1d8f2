"""The pq command line: every command, its output and its exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from persistent_queue import JobState, Queue
from persistent_queue.cli import EXIT_EMPTY, EXIT_FAILED, EXIT_USAGE


def test_enqueue_dequeue_ack_round_trip(pq, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    made = pq("enqueue", "emails", '{"to": "a@b.c"}', "--priority", "3", "--header", "t=acme")
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["headers"] == {"t": "acme"}
    claimed = pq("dequeue", "emails", "--visibility-timeout", "30")
    job = json.loads(claimed.output)
    assert job["payload"] == {"to": "a@b.c"} and job["lease_token"]
    assert pq("dequeue", "emails").exit_code == EXIT_EMPTY
    stale = pq("ack", str(job["id"]), "--token", "0" * 32)
    assert stale.exit_code == EXIT_FAILED and "stale" in stale.output
    assert pq("ack", str(job["id"]), "--token", job["lease_token"]).exit_code == 0
    with Queue(db_path) as q:
        assert q.get_job(job["id"]).state is JobState.DONE


def test_stats_table_and_json(pq) -> None:  # type: ignore[no-untyped-def]
    pq("enqueue", "a", "1")
    table = pq("stats")
    assert table.output.splitlines()[0].split()[:3] == ["queue", "waiting", "ready"]
    assert json.loads(pq("stats", "--json").output)[0]["ready"] == 1
    assert pq("stats", "nope").exit_code == EXIT_FAILED


def test_queue_admin(pq, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert pq("queues", "create", "q1", "--max-attempts", "2").exit_code == 0
    assert pq("queues", "create", "q1").exit_code == EXIT_FAILED
    assert pq("queues", "create", "bad name").exit_code == EXIT_USAGE
    assert pq("queues", "pause", "q1").exit_code == 0
    listed = json.loads(pq("queues", "list", "--json").output)
    assert listed[0]["name"] == "q1" and listed[0]["paused"] is True
    pq("enqueue", "q1", "x")
    assert pq("dequeue", "q1").exit_code == EXIT_EMPTY  # paused
    assert pq("queues", "resume", "q1").exit_code == 0
    assert pq("queues", "delete", "q1").exit_code == EXIT_FAILED  # still has a job
    assert pq("queues", "delete", "q1", "--force").exit_code == 0
    with Queue(db_path) as q:
        assert q.list_queues() == []


def test_jobs_and_dead_letters(pq, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Queue(db_path) as q:
        job = q.enqueue("q", "x", max_attempts=1)
        claimed = q.dequeue("q")
        assert claimed is not None
        q.nack(claimed, error="boom")
    shown = json.loads(pq("jobs", "show", str(job.id)).output)
    assert shown["state"] == "dead" and [e["event"] for e in shown["history"]] == [
        "enqueued", "claimed", "failed", "dead_lettered"]
    assert pq("jobs", "show", "999").exit_code == EXIT_FAILED
    assert "boom" in pq("dlq", "list").output
    assert pq("dlq", "redrive").exit_code == EXIT_USAGE
    assert pq("dlq", "redrive", str(job.id)).output.strip() == "redrove 1 job(s)"
    listed = json.loads(pq("jobs", "list", "--state", "ready", "--json").output)
    assert [j["id"] for j in listed] == [job.id]
    assert pq("jobs", "list", "--state", "nope").exit_code == EXIT_USAGE


def test_dlq_purge_asks_first(pq, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Queue(db_path) as q:
        q.enqueue("q", 1)
        q.move_to_dead_letter_queue(1)
    assert pq("dlq", "purge", input="n\n").exit_code != 0
    assert pq("dlq", "purge", "--older-than", "soon", "--yes").exit_code == EXIT_USAGE
    assert pq("dlq", "purge", "--yes").output.strip() == "purged 1 dead letter(s)"


def test_cleanup_workers_doctor(pq, db_path: Path, backend: str) -> None:  # type: ignore[no-untyped-def]
    with Queue(db_path) as q:
        q.enqueue("q", 1)
        claimed = q.dequeue("q")
        assert claimed is not None
        q.ack(claimed)
        q.register_worker("c1", kind="consumer", queues=["q"])
    assert pq("cleanup", "--older-than", "0").output.strip() == "removed 1 done job(s)"
    assert pq("cleanup", "--older-than", "a week").exit_code == EXIT_USAGE
    assert "c1" in pq("workers").output
    report = json.loads(pq("doctor", "--json").output)
    assert report["ok"] and report["integrity"] == "ok" and report["problems"] == []
    if backend == "postgresql":  # a server: its facts, no local disk to check
        assert report["backend"] == "postgresql" and report["server_version"]
        assert "connections" in pq("doctor", "--quick").output
        return
    assert report["journal_mode"] == "wal" and report["wal_bytes"] >= 0
    assert "WAL size" in pq("doctor", "--quick").output
    unhealthy = pq("doctor", "--min-free-mb", str(10**12))
    assert unhealthy.exit_code == EXIT_FAILED and "free on the database's disk" in unhealthy.output


def test_a_broken_database_is_a_message_not_a_traceback(tmp_path: Path,
                                                        subprocess_env: dict[str, str]) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    done = subprocess.run([sys.executable, "-m", "persistent_queue", "--db", str(garbage),
                           "stats"], env=subprocess_env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == EXIT_FAILED
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
