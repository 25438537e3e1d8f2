"""pq enqueue's workflow options, pq topics and pq schedules: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import Result

from persistent_queue import JobState, Queue
from persistent_queue.cli import EXIT_FAILED, EXIT_FULL, EXIT_USAGE


def _job(result: Result) -> dict:  # type: ignore[type-arg]
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_enqueue_with_dependencies_waits(pq, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = _job(pq("enqueue", "etl", "extract"))
    second = _job(pq("enqueue", "etl", "transform"))
    child = _job(pq("enqueue", "etl", "load", "--depends-on", str(first["id"]),
                    "--depends-on", str(second["id"])))
    assert child["state"] == "waiting"
    assert sorted(child["depends_on"]) == sorted([first["id"], second["id"]])
    with Queue(db_path) as q:
        assert q.get_job(child["id"]).state is JobState.WAITING


def test_enqueue_on_a_missing_dependency_is_a_usage_error(pq) -> None:  # type: ignore[no-untyped-def]
    result = pq("enqueue", "etl", "x", "--depends-on", "9999")
    assert result.exit_code == EXIT_USAGE
    assert "error:" in result.output and "9999" in result.output
    assert "Traceback" not in result.output


def test_enqueue_dedup_key_returns_the_existing_job(pq) -> None:  # type: ignore[no-untyped-def]
    first = _job(pq("enqueue", "mail", "hi", "--dedup-key", "user-7"))
    again = pq("enqueue", "mail", "hi", "--dedup-key", "user-7")
    job = _job(again)
    assert job["id"] == first["id"] and job["deduplicated"] is True
    assert f"deduplicated: existing job {first['id']}" in again.stderr
    stats = json.loads(pq("stats", "--json").stdout)
    assert stats[0]["dedup_hits"] == 1
    assert "dedup_hits" in pq("stats").stdout.splitlines()[0]
    assert pq("enqueue", "mail", "hi", "--dedup-window", "5").exit_code == EXIT_USAGE


def test_enqueue_headers_max_attempts_and_run_at(pq) -> None:  # type: ignore[no-untyped-def]
    job = _job(pq("enqueue", "q", '{"a": 1}', "--header", "tenant=acme", "--header", "n=3",
                  "--max-attempts", "7", "--run-at", "2027-01-01T00:00:00"))
    assert job["headers"] == {"tenant": "acme", "n": 3}
    assert job["max_attempts"] == 7
    assert job["available_at"] == 1798761600.0
    assert pq("enqueue", "q", "x", "--run-at", "tomorrow").exit_code == EXIT_USAGE
    assert pq("enqueue", "q", "x", "--header", "novalue").exit_code == EXIT_USAGE


def test_enqueue_into_a_full_queue_exits_4(pq) -> None:  # type: ignore[no-untyped-def]
    assert pq("queues", "create", "small", "--max-size", "1").exit_code == 0
    _job(pq("enqueue", "small", "1"))
    full = pq("enqueue", "small", "2")
    assert full.exit_code == EXIT_FULL and "full" in full.output
    assert json.loads(pq("stats", "small", "--json").stdout)[0]["rejected_full"] == 1


def test_topics_subscribe_publish_list_unsubscribe(pq, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    nobody = pq("topics", "publish", "orders", "{}")
    assert nobody.exit_code == EXIT_FAILED and "subscri" in nobody.output
    assert "subscribed" in pq("topics", "subscribe", "orders", "billing").output
    assert "already" in pq("topics", "subscribe", "orders", "billing").output
    pq("topics", "subscribe", "orders", "shipping")
    listed = json.loads(pq("topics", "list", "--json").stdout)
    assert [(s["topic"], s["queue"]) for s in listed] == [("orders", "billing"),
                                                          ("orders", "shipping")]
    assert pq("topics", "list").stdout.split()[:3] == ["topic", "queue", "since"]
    published = json.loads(pq("topics", "publish", "orders", '{"id": 5}', "--header",
                              "src=web").stdout)
    assert [p["queue"] for p in published] == ["billing", "shipping"]
    with Queue(db_path) as q:
        assert q.get_job(published[0]["id"]).payload == {"id": 5}
    assert pq("topics", "unsubscribe", "orders", "billing").exit_code == 0
    assert pq("topics", "unsubscribe", "orders", "billing").exit_code == EXIT_FAILED
    assert pq("topics", "subscribe", "bad topic", "q").exit_code == EXIT_USAGE


def test_schedules_add_list_run_due_remove(pq, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    added = _job(pq("schedules", "add", "nightly", "reports", '{"kind": "daily"}',
                    "--cron", "0 3 * * *", "--timezone", "Europe/Paris"))
    assert added["cron"] == "0 3 * * *" and added["timezone"] == "Europe/Paris"
    pq("schedules", "add", "tick", "metrics", "x", "--every", "60", "--start-at", "0")
    table = pq("schedules", "list").stdout
    assert "every 60s" in table and "cron 0 3 * * * (Europe/Paris)" in table
    fired = pq("schedules", "run-due")
    assert fired.exit_code == 0 and "1 schedule(s) fired" in fired.stdout
    assert "tick -> metrics" in fired.stdout
    with Queue(db_path) as q:
        assert q.stats("metrics").ready == 1
    assert json.loads(pq("schedules", "list", "--json").stdout)[1]["runs"] == 1
    assert pq("schedules", "remove", "tick").exit_code == 0
    missing = pq("schedules", "remove", "tick")
    assert missing.exit_code == EXIT_FAILED and "tick" in missing.output
    both = pq("schedules", "add", "x", "q", "1", "--every", "60", "--cron", "* * * * *")
    assert both.exit_code == EXIT_USAGE
    assert pq("schedules", "add", "x", "q", "1", "--cron", "not a cron").exit_code == EXIT_USAGE


def test_queues_delete_names_the_schedules_and_subscriptions_it_removed(pq, db_path: Path) -> None:  # type: ignore[no-untyped-def]
    pq("queues", "create", "reports")
    pq("schedules", "add", "nightly", "reports", "{}", "--every", "3600")
    pq("schedules", "add", "tick", "metrics", "{}", "--every", "60")
    pq("topics", "subscribe", "orders", "reports")
    pq("topics", "subscribe", "orders", "billing")
    pq("enqueue", "reports", "pending")
    refused = pq("queues", "delete", "reports")
    assert refused.exit_code == EXIT_FAILED and "unfinished" in refused.output
    assert len(json.loads(pq("schedules", "list", "--json").stdout)) == 2  # nothing deleted

    deleted = pq("queues", "delete", "reports", "--force")

    assert deleted.exit_code == 0
    assert deleted.stdout.strip() == ("queue 'reports' deleted with its schedule 'nightly' and "
                                      "its subscription to topic 'orders'")
    assert [s["name"] for s in json.loads(pq("schedules", "list", "--json").stdout)] == ["tick"]
    with Queue(db_path) as q:
        assert [(s.topic, s.queue) for s in q.subscriptions()] == [("orders", "billing")]
    pq("queues", "create", "plain")
    assert pq("queues", "delete", "plain").stdout.strip() == "queue 'plain' deleted"
