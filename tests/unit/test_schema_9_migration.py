"""Schema 9 on a database that schema 8 filled: queues keep their settings and gain alert
thresholds (none set), a worker that version 8 had marked 'dead' is read as lost and can be
pruned, and a stopped or running worker keeps its state."""

from __future__ import annotations

from pathlib import Path

import pytest

from persistent_queue import Queue
from persistent_queue.storage import queries as sql
from tests.migration_support import database_at_version
from tests.support import FakeClock

NOW = 1_700_000_000.0

#: Rows as schema 8 wrote them: a queue with flow control, a ready job, and a worker in each
#: state version 8 stored (its reader had written 'dead' over the silent one).
V8_ROWS = [
    "INSERT INTO queues (name, max_attempts, visibility_timeout, max_size, paused, created_at,"
    " updated_at, concurrency, limited) VALUES ('q', 3, 30, NULL, 0, 1, 1, 2, 1)",
    "INSERT INTO jobs (queue, state, priority, payload, attempts, available_at, created_at,"
    " updated_at) VALUES ('q', 'ready', 0, '1', 1, 1, 1, 1)",
    "INSERT INTO workers (id, kind, host, pid, queues, state, started_at, heartbeat_at,"
    " stopped_at) VALUES ('dead-one', 'consumer', 'h', 1, '[\"q\"]', 'dead', 1, 2, 2)",
    "INSERT INTO workers (id, kind, host, pid, queues, state, started_at, heartbeat_at,"
    " stopped_at) VALUES ('stopped-one', 'consumer', 'h', 2, '[]', 'stopped', 1, 3, 3)",
    "INSERT INTO workers (id, kind, host, pid, queues, state, started_at, heartbeat_at)"
    " VALUES ('running-one', 'producer', 'h', 3, '[]', 'running', 1, 1700000000)",
]


@pytest.fixture
def v8_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    return database_at_version(request, backend, tmp_path, 8, V8_ROWS)


def test_a_version_8_database_is_migrated_with_its_queues_and_workers(
    v8_database: Path | str,
) -> None:
    with Queue(v8_database, clock=FakeClock(NOW + 1), durability="normal") as q:
        assert q.schema_version() == len(sql.migrations("sqlite")) >= 9
        info = q.get_queue("q")
        assert (info.concurrency, info.alert_depth, info.alert_oldest_age,
                info.alert_failure_rate, info.alert_dead_letters) == (2, None, None, None, None)
        assert q.alerts() == [] and q.stats("q").retry_pending == 1

        workers = {w.id: (w.state, w.stopped_at) for w in q.workers()}
        assert workers == {"dead-one": ("lost", None), "stopped-one": ("stopped", 3.0),
                           "running-one": ("running", None)}
        assert q.update_queue("q", alert_depth=1).alert_depth == 1
        assert [(a.kind, a.firing) for a in q.alerts()] == [("depth", True)]
        assert q.prune_workers(3600) == 2
        assert [w.id for w in q.workers()] == ["running-one"]
