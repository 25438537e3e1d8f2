"""The test cluster itself: a database handed to a test is as good as a fresh template copy."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.postgres_support import SessionCluster
from tests.support import ROOT

pytestmark = pytest.mark.postgres


def test_a_reused_database_holds_nothing_of_the_previous_test(
    pg_session: SessionCluster,
) -> None:
    name = pg_session.new_database()
    with Queue(pg_session.url(name), durability="normal") as q:
        first = q.enqueue("q", 1)
        claimed = q.dequeue("q")
        assert claimed is not None
        q.nack(claimed, "boom", delay=0)
        q.set_value("k", "v")
        q.register_worker("w", kind="consumer", queues=["q"])
        # a session left open, as a still-running child process would
        lingering = Queue(pg_session.url(name))
        lingering.stats()
    pg_session.release(name)
    again = pg_session.new_database()
    assert again == name  # reused, not copied again
    with Queue(pg_session.url(again), durability="normal") as q:
        assert q.list_queues() == [] and q.list_jobs() == [] and q.workers() == []
        assert q.get_value("k") is None and q.dead_letters() == []
        assert q.enqueue("q", 2).id == first.id  # the identities restarted too
    pg_session.release(again)
    with pytest.raises(Exception):  # noqa: B017 (the lingering session was ended)
        lingering.stats()
    lingering.close()


def test_a_database_whose_schema_changed_is_dropped_not_reused(
    pg_session: SessionCluster,
) -> None:
    import psycopg

    name = pg_session.new_database()
    with psycopg.connect(pg_session.url(name), autocommit=True) as conn:
        conn.execute("ALTER TABLE jobs DROP CONSTRAINT jobs_check")
    pg_session.release(name)
    assert pg_session.new_database() != name
    with psycopg.connect(pg_session.cluster.url(), autocommit=True) as conn:
        gone = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                            (name,)).fetchone()
    assert gone == (0,)


def test_the_cluster_script_starts_reports_and_removes_a_cluster() -> None:
    parent = Path(tempfile.mkdtemp(prefix="pq-cli-"))  # pytest's tmp_path is private to root
    parent.chmod(0o755)
    folder = parent / "pg"
    script = [sys.executable, str(ROOT / "scripts" / "pg_cluster.py")]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*script, *args, "--dir", str(folder)], capture_output=True,
                              text=True, timeout=180)

    try:
        started = run("start")
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        assert url.startswith("postgresql://postgres@127.0.0.1:") and url.endswith("/queue")
        assert run("url").stdout.strip() == url
        assert run("start").stdout.strip() == url  # idempotent
        with Queue(url) as q:
            q.enqueue("q", 1)
        drill = run("start", "--database", "drill", "--fresh").stdout.strip()
        with Queue(drill) as q:
            q.enqueue("q", 1)
        fresh = run("start", "--database", "drill", "--fresh").stdout.strip()
        with Queue(fresh) as q:
            assert q.list_jobs() == []  # --fresh: an empty database again
        with Queue(url) as q:
            assert len(q.list_jobs()) == 1  # the others are kept
        assert run("status").returncode == 0
    finally:
        stopped = run("stop", "--remove")
    assert stopped.returncode == 0, stopped.stderr
    assert not folder.exists()
    assert run("status").returncode == 1
    shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.slow
def test_without_postgresql_its_tests_skip_unless_required(subprocess_env: dict[str, str]
                                                           ) -> None:
    test = "tests/unit/test_enqueue.py::test_enqueue_returns_the_stored_job"
    env = {**subprocess_env, "PQ_PG_BINDIR": "/nonexistent"}
    env.pop("PQ_REQUIRE_POSTGRES", None)

    def run(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-rs", test], env={**env, **extra}, capture_output=True,
                              text=True, timeout=240, cwd=ROOT)

    relaxed = run()
    assert relaxed.returncode == 0, relaxed.stdout
    assert "1 passed, 1 skipped" in relaxed.stdout and "PQ_PG_BINDIR" in relaxed.stdout
    strict = run(PQ_REQUIRE_POSTGRES="1")
    assert strict.returncode == 1 and "1 passed, 1 error" in strict.stdout, strict.stdout
    assert "PQ_REQUIRE_POSTGRES is set" in strict.stdout
