"""The admin console's Backup page, driven through Streamlit's AppTest against a real
database: a checked copy offered for download, behind the console password."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from console_helpers import RUN_TIMEOUT, button, click, messages, run
from streamlit.testing.v1 import AppTest

from persistent_queue import Queue
from persistent_queue.storage.postgres.url import password_of
from tests.support import ROOT

Console = Callable[[str], AppTest]


def backup_page(app: AppTest) -> AppTest:
    app.radio(key="admin_page").set_value("Backup")
    return run(app)


@pytest.mark.sqlite_only
def test_backup_page_makes_a_checked_copy_to_download_behind_the_password(
        open_console: Console, db: Queue, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    db.enqueue_many("emails", [{"n": n} for n in range(30)])
    monkeypatch.setenv("PQ_CONSOLE_PASSWORD", "s3cret")
    app = open_console("admin_console.py")
    assert not app.sidebar.radio and not [b for b in app.button if b.label == "Make a backup"]
    app.text_input[0].set_value("s3cret")
    click(app, "Log in")

    backup_page(app)
    assert not app.get("download_button")
    click(app, "Make a backup")
    assert not messages(app, "error")
    [summary] = messages(app, "success")
    assert "30 jobs" in summary and "integrity ok" in summary
    [download] = app.get("download_button")
    assert download.proto.label == "Download the backup"
    copy = tmp_path / "downloaded.db"
    data = app.session_state["admin_backup_copy"][0]
    copy.write_bytes(data)
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (30,)
    finally:
        conn.close()
    assert not list(Path(str(db.db)).parent.glob("*.partial"))
    button(app, "Make a backup")  # still offered for another copy


@pytest.mark.postgres
def test_backup_page_on_postgresql_shows_pg_dump_with_the_password_masked(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_url
    if password_of(url) is None:  # a trusted local cluster: a password libpq will not use
        url += ("&" if "?" in url else "?") + "password=s3cr3t"
    secret = password_of(url)
    assert secret
    monkeypatch.setenv("PQ_DB", url)
    monkeypatch.delenv("PQ_CONSOLE_PASSWORD", raising=False)
    app = run(AppTest.from_file(str(ROOT / "admin_console.py"), default_timeout=RUN_TIMEOUT))
    backup_page(app)
    [code] = app.code
    assert code.value.startswith("pg_dump --format=custom") and "***" in code.value
    assert secret not in code.value
    assert not [b for b in app.button if b.label == "Make a backup"]
