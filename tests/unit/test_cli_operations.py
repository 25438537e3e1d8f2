"""``pq queues update --alert-*``, ``pq stats`` and ``pq queues list`` with alerts,
``pq busy``, ``pq workers [prune]`` and the janitor's ``--workers-older-than`` (both
backends)."""

from __future__ import annotations

import json
from pathlib import Path

from persistent_queue import Queue
from persistent_queue.cli import EXIT_USAGE


def test_alert_options_set_clear_and_refuse(pq, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    made = pq("queues", "create", "emails", "--alert-depth", "2", "--alert-oldest-age", "5m")
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["alert_oldest_age"] == 300.0
    changed = pq("queues", "update", "emails", "--alert-depth", "none",
                 "--alert-failure-rate", "0.2", "--alert-dead-letters", "3")
    assert changed.exit_code == 0, changed.output
    info = json.loads(changed.output)
    assert (info["alert_depth"], info["alert_oldest_age"], info["alert_failure_rate"],
            info["alert_dead_letters"]) == (None, 300.0, 0.2, 3)
    for flags in (["--alert-depth", "0"], ["--alert-depth", "lots"],
                  ["--alert-failure-rate", "1.5"], ["--alert-failure-rate", "nan"],
                  ["--alert-oldest-age", "5x"], ["--alert-oldest-age", "0"]):
        refused = pq("queues", "update", "emails", *flags)
        assert refused.exit_code == EXIT_USAGE, (flags, refused.output)
        assert "Traceback" not in refused.output
    with Queue(db_path) as q:
        assert q.get_queue("emails").alert_dead_letters == 3


def test_stats_and_queue_list_show_what_fires(pq, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Queue(db_path) as q:
        q.create_queue("emails", max_attempts=2, alert_depth=1)
        q.create_queue("calm", alert_depth=100)
        q.enqueue("emails", "a")
        job = q.dequeue("emails")
        assert job is not None
        q.nack(job, error="boom", delay=0)
    shown = pq("stats")
    assert shown.exit_code == 0, shown.output
    header, *rows_shown = shown.output.splitlines()
    (emails_row,) = [row for row in rows_shown if row.startswith("emails")]
    for column in ("expired", "retry_pending", "oldest_ready", "alerts"):
        assert column in header
    assert emails_row.endswith("depth 1>=1")
    rows = {row["queue"]: row for row in json.loads(pq("stats", "--json").output)}
    assert (rows["emails"]["retry_pending"], rows["emails"]["alerts"]) == (1, "depth 1>=1")
    assert rows["calm"]["alerts"] == ""
    listed = {row["name"]: row["alerts"] for row in json.loads(
        pq("queues", "list", "--json").output)}
    assert listed == {"calm": "", "emails": "depth 1>=1"}


def test_busy_lists_the_jobs_running_now(pq, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Queue(db_path) as q:
        q.enqueue("emails", "a", headers={"task": "send"})
        job = q.dequeue("emails", worker="w1")
        assert job is not None
        q.set_progress(job, 0.3, "sending")
    shown = pq("busy")
    assert shown.exit_code == 0, shown.output
    assert "send" in shown.output and "w1" in shown.output and "30%" in shown.output
    (found,) = json.loads(pq("busy", "--queue", "emails", "--json").output)
    assert (found["id"], found["worker"], found["progress_message"]) == (job.id, "w1",
                                                                         "sending")
    with Queue(db_path) as q:
        q.create_queue("other")
    assert json.loads(pq("busy", "--queue", "other", "--json").output) == []
    assert pq("busy", "--limit", "0").exit_code == EXIT_USAGE


def test_workers_prune_and_the_janitor_forget_stopped_workers(pq, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Queue(db_path) as q:
        for worker in ("a", "b"):
            q.register_worker(worker, kind="consumer")
            q.stop_worker(worker)
        q.register_worker("alive", kind="consumer")
    listed = json.loads(pq("workers", "--json").output)
    assert {w["id"]: w["state"] for w in listed} == {"a": "stopped", "b": "stopped",
                                                     "alive": "running"}
    assert pq("workers", "prune", "--older-than", "1d").output.strip() == "removed 0 worker(s)"
    assert pq("workers", "prune", "--older-than", "soon").exit_code == EXIT_USAGE
    swept = pq("janitor", "--workers-older-than", "0s")
    assert swept.exit_code == 0, swept.output
    assert json.loads(swept.output.splitlines()[-1])["workers_removed"] == 2
    assert [w["id"] for w in json.loads(pq("workers", "--json").output)] == ["alive"]
