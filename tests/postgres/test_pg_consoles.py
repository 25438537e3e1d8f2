"""The consoles on PostgreSQL: server facts on the health page, no password, no idle sessions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from persistent_queue import Queue
from tests.postgres.test_pg_processes import SECRET, with_password
from tests.support import ROOT

sys.path.insert(0, str(ROOT / "tests" / "consoles"))
from console_helpers import RUN_TIMEOUT, plain, run  # noqa: E402

pytestmark = pytest.mark.postgres


def _sessions(url: str) -> int:
    """Sessions on the database other than the one asking."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND pid <> pg_backend_pid()").fetchone()
    return int(row[0]) if row else 0


def test_admin_health_page_shows_the_server_and_no_session_outlives_a_run(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Queue(pg_url, durability="normal") as q:
        for n in range(20):
            q.enqueue("emails", {"n": n})
    url = with_password(pg_url)
    monkeypatch.setenv("PQ_DB", url)
    monkeypatch.delenv("PQ_CONSOLE_PASSWORD", raising=False)
    app = run(AppTest.from_file(str(ROOT / "admin_console.py"), default_timeout=RUN_TIMEOUT))
    for name in ("Queues", "Dead letters", "Metrics", "Health"):
        app.radio(key="admin_page").set_value(name)
        run(app)
    metrics = {m.label: plain(m.value) for m in app.metric}
    assert metrics["PostgreSQL"].split(".")[0].isdigit()
    settings = dict(zip(app.dataframe[0].value["setting"], app.dataframe[0].value["value"],
                        strict=True))
    assert settings["database"].startswith("postgresql://") and ":***@" in settings["database"]
    shown = " ".join(plain(str(e.value))
                     for e in (*app.caption, *app.sidebar.caption, *app.markdown))
    assert SECRET not in shown + str(settings)
    ops = run(AppTest.from_file(str(ROOT / "ops_console.py"), default_timeout=RUN_TIMEOUT))
    assert any(":***@" in plain(str(c.value)) for c in ops.caption)
    assert _sessions(pg_url) == 0  # every run closed its connections


def test_an_unreachable_server_is_a_message_without_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PQ_DB", f"postgresql://someone:{SECRET}@127.0.0.1:1/nowhere")
    monkeypatch.delenv("PQ_CONSOLE_PASSWORD", raising=False)
    for script in ("admin_console.py", "ops_console.py"):
        app = run(AppTest.from_file(str(ROOT / script), default_timeout=RUN_TIMEOUT))
        errors = [str(e.value) for e in app.error]
        assert any("Cannot open the database" in e for e in errors), errors
        assert all(SECRET not in e for e in errors)
