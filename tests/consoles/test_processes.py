"""supervisord's programs through persistent_queue.supervision and the admin console's
Processes page, against a real supervisord running ``sleep`` programs."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from console_helpers import click, messages, run
from streamlit.testing.v1 import AppTest

from persistent_queue import supervision
from persistent_queue.errors import SupervisorRefused, SupervisorUnavailable
from tests.supervision_support import running_supervisord

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def supervisord(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real supervisord (a lone ``sleeper`` and the group ``worker`` of two); its URL,
    also in ``PQ_SUPERVISOR_URL``."""
    with running_supervisord() as url:
        monkeypatch.setenv(supervision.URL_ENV, url)
        yield url


def states(url: str) -> dict[str, str]:
    return {p.namespec: p.state for p in supervision.programs(url)}


def test_programs_list_every_process_with_its_state_pid_and_uptime(supervisord: str) -> None:
    found = {p.namespec: p for p in supervision.programs(supervisord)}
    assert list(found) == ["sleeper", "worker:worker_00", "worker:worker_01"]
    sleeper = found["sleeper"]
    assert (sleeper.group, sleeper.state, sleeper.running) == ("sleeper", "RUNNING", True)
    assert sleeper.pid > 0 and os.path.exists(f"/proc/{sleeper.pid}")
    assert sleeper.uptime is not None and sleeper.uptime >= 0
    assert "pid" in sleeper.description and found["worker:worker_01"].group == "worker"


def test_stop_start_and_restart_a_program_and_a_group(supervisord: str) -> None:
    first = {p.namespec: p.pid for p in supervision.programs(supervisord)}
    supervision.stop("sleeper", supervisord)
    stopped = {p.namespec: p for p in supervision.programs(supervisord)}
    assert stopped["sleeper"].state == "STOPPED" and stopped["sleeper"].pid == 0
    assert stopped["sleeper"].uptime is None
    supervision.stop("sleeper", supervisord)  # already stopped: not an error
    supervision.start("sleeper", supervisord)
    supervision.start("sleeper", supervisord)  # already running: not an error
    assert states(supervisord)["sleeper"] == "RUNNING"

    supervision.stop("worker:*", supervisord)
    assert states(supervisord) == {"sleeper": "RUNNING", "worker:worker_00": "STOPPED",
                                   "worker:worker_01": "STOPPED"}
    supervision.restart("worker:*", supervisord)
    supervision.restart("sleeper", supervisord)
    after = {p.namespec: p for p in supervision.programs(supervisord)}
    assert all(p.state == "RUNNING" for p in after.values())
    assert all(after[name].pid != pid for name, pid in first.items())


def test_an_unknown_program_is_refused(supervisord: str) -> None:
    with pytest.raises(SupervisorRefused, match="BAD_NAME"):
        supervision.start("nope", supervisord)


def test_supervisord_not_running_is_a_readable_error(tmp_path: Path) -> None:
    with pytest.raises(SupervisorUnavailable, match="not running"):
        supervision.programs(f"unix://{tmp_path / 'none.sock'}")
    with pytest.raises(SupervisorUnavailable, match="not a supervisord URL"):
        supervision.programs("ftp://x")


def page(open_console: Callable[[str], AppTest]) -> AppTest:
    app = open_console("admin_console.py")
    app.radio(key="admin_page").set_value("Processes")
    return run(app)


def test_processes_page_shows_programs_and_stops_starts_a_group(
    supervisord: str, open_console: Callable[[str], AppTest]
) -> None:
    app = page(open_console)
    table = app.dataframe[0].value.set_index("program")
    assert list(table.index) == ["sleeper", "worker:worker_00", "worker:worker_01"]
    assert set(table["state"]) == {"RUNNING"} and table.loc["sleeper", "pid"] > 0
    app.button(key="proc_stop_worker:*").click()
    run(app)
    assert messages(app, "success") == ["Stopped worker:*."]
    assert states(supervisord)["worker:worker_00"] == "STOPPED"
    table = app.dataframe[0].value.set_index("program")
    assert table.loc["worker:worker_01", "state"] == "STOPPED"
    app.button(key="proc_restart_sleeper").click()
    run(app)
    assert messages(app, "success") == ["Restarted sleeper."]
    app.button(key="proc_start_worker:*").click()
    run(app)
    assert set(states(supervisord).values()) == {"RUNNING"}


def test_processes_page_without_supervisord_says_so(
    open_console: Callable[[str], AppTest], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(supervision.URL_ENV, f"unix://{tmp_path / 'none.sock'}")
    app = page(open_console)
    [warning] = messages(app, "warning")
    assert "supervisord is not running" in warning and "make run" in warning
    assert not app.dataframe


def test_processes_page_is_behind_the_console_password(
    open_console: Callable[[str], AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PQ_CONSOLE_PASSWORD", "s3cret")
    app = open_console("admin_console.py")
    assert not app.radio and not app.dataframe
    click(app, "Log in")
    assert messages(app, "error") == ["Wrong password."]


def test_a_supervisord_that_never_answers_times_out() -> None:
    """A socket that accepts and never answers (a hung supervisord) ends the read."""
    path = Path(tempfile.mkdtemp(prefix="pqhung")) / "s.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as hung:
        hung.bind(str(path))
        hung.listen(1)
        started = time.monotonic()
        with pytest.raises(SupervisorUnavailable, match="did not answer within 0.5 s"):
            supervision.programs(f"unix://{path}", timeout=0.5)
        assert time.monotonic() - started < 10
    path.unlink()
    path.parent.rmdir()


def test_the_console_cannot_stop_or_restart_its_own_process(
    supervisord: str, open_console: Callable[[str], AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop would end the console before its start: the program running the console (here
    played by sleeper) offers only Start."""
    from persistent_queue.console import admin_processes

    [sleeper] = [p for p in supervision.programs(supervisord) if p.name == "sleeper"]
    monkeypatch.setattr(admin_processes, "this_process", lambda: sleeper.pid)
    app = page(open_console)
    assert app.button(key="proc_stop_sleeper").disabled
    assert app.button(key="proc_restart_sleeper").disabled
    assert not app.button(key="proc_start_sleeper").disabled
    assert not app.button(key="proc_stop_worker:worker_00").disabled
