"""The consoles' pages against an operator's mistakes and an attacker's input: forged widget
events after a logout, hostile text in the new pages, bad thresholds and large data."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pytest
from console_helpers import RUN_TIMEOUT, click, messages, run
from streamlit.proto.WidgetStates_pb2 import WidgetStates
from streamlit.testing.v1 import AppTest
from test_console_injection import ERROR, HOST, IMAGE, QUEUE, REASON, WORKER, assert_shown_as_text

from persistent_queue import Queue, supervision
from persistent_queue.errors import SupervisorRefused, SupervisorUnavailable
from tests.supervision_support import HEADER, running_supervisord
from tests.support import wait_for

Console = Callable[[str], AppTest]
ROOT = Path(__file__).resolve().parents[2]


def forge_click(app: AppTest, widget_id: str) -> AppTest:
    """Send what a browser sends when a button is clicked, for a button that is not on the
    page any more (a stale tab or a hand-made websocket message)."""
    states = WidgetStates()
    forged = states.widgets.add()
    forged.id = widget_id
    forged.trigger_value = True
    app._run(states)  # noqa: SLF001 - AppTest has no public way to send a raw event
    return app


def logged_in(open_console: Console, script: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("PQ_CONSOLE_PASSWORD", "s3cret")
    app = open_console(script)
    [password] = app.text_input
    password.set_value("s3cret")
    return click(app, "Log in")


def test_a_button_of_a_page_seen_before_logout_does_nothing_after_it(
    open_console: Console, db: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streamlit runs a button's callback before the script, so before the login gate, for
    every button the session was ever shown: a forged click after a logout runs nothing."""
    db.create_queue("billing")
    app = logged_in(open_console, "admin_console.py", monkeypatch)
    app.radio(key="admin_page").set_value("Queues")
    run(app)
    pause = app.button(key="pause_toggle").id
    click(app, "Log out")
    assert not app.radio  # the login form only
    forge_click(app, pause)
    assert not {q.name: q for q in db.list_queues()}["billing"].paused


def test_the_running_now_fragment_is_dropped_at_logout(
    open_console: Console, db: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fragment reruns alone, without the login gate: after a logout the session keeps no
    fragment a forged rerun request could run (the Running now tab would show every running
    job, its worker and progress message)."""
    app = logged_in(open_console, "ops_console.py", monkeypatch)
    assert app._fragment_storage._fragments  # noqa: SLF001 - the Running now tab's
    click(app, "Log out")
    assert not app.tabs  # the login form only
    assert not app._fragment_storage._fragments  # noqa: SLF001


@pytest.fixture
def processes_console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Console:
    """The admin console for the Processes page, which reads no database (so one backend)."""
    monkeypatch.setenv("PQ_DB", str(tmp_path / "queue.db"))
    monkeypatch.delenv("PQ_CONSOLE_PASSWORD", raising=False)
    return lambda script: run(AppTest.from_file(str(ROOT / script),
                                                default_timeout=RUN_TIMEOUT))


@pytest.mark.e2e
def test_a_stop_button_seen_before_logout_stops_nothing_after_it(
    processes_console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Processes page's buttons call supervisord directly, not through an action of the
    queue: they check the login too. A forged click on a disabled button (the console's own
    program, here played by sleeper) runs nothing either."""
    from persistent_queue.console import admin_processes

    with running_supervisord() as url:
        monkeypatch.setenv(supervision.URL_ENV, url)
        [sleeper] = [p for p in supervision.programs(url) if p.name == "sleeper"]
        monkeypatch.setattr(admin_processes, "this_process", lambda: sleeper.pid)
        app = logged_in(processes_console, "admin_console.py", monkeypatch)
        app.radio(key="admin_page").set_value("Processes")
        restart = run(app).button(key="proc_restart_sleeper")
        assert restart.disabled
        forge_click(app, restart.id)
        assert supervision.programs(url)[0].pid == sleeper.pid  # not restarted
        monkeypatch.setattr(admin_processes, "this_process", lambda: -1)
        stop = run(app).button(key="proc_stop_sleeper").id
        click(app, "Log out")
        forge_click(app, stop)
        assert {p.namespec: p.state for p in supervision.programs(url)}["sleeper"] == "RUNNING"


def test_the_queues_page_edits_a_queue_with_the_largest_thresholds(
    open_console: Console, db: Queue, console_db: Path | str
) -> None:
    """Thresholds set from the command line up to 2**62, beyond a browser's exact integers
    (2**53), and the largest max size: the page renders and saves the other settings."""
    big = 2**62
    db.create_queue("huge", max_size=2**31 - 1, alert_depth=big,
                    alert_dead_letters=big, alert_oldest_age=3.1e7, alert_failure_rate=1.0)
    app = open_console("admin_console.py")
    app.radio(key="admin_page").set_value("Queues")
    run(app).selectbox(key="manage_queue").set_value("huge")
    run(app)
    app.number_input(key="edit_attempts_huge").set_value(7)
    click(app, "Save settings")
    assert messages(app, "success") == ["Saved the settings of queue 'huge'."]
    [info] = db.list_queues()
    assert info.max_attempts == 7 and info.alert_failure_rate == 1.0
    assert info.alert_depth == info.alert_dead_letters == 2**53 - 1
    assert info.max_size == 2**31 - 1


def test_ten_thousand_lost_workers_and_2000_running_jobs_render_bounded(
    open_console: Console, db: Queue, console_db: Path | str
) -> None:
    """Lost workers pile up until the janitor forgets them (a day): the pages list at most
    200 workers (those running a job first), chart the 20 busiest consumers, and say how many
    there are; Running now lists the 200 longest running jobs."""
    with Queue(console_db, durability="normal", clock=lambda: time.time() - 120) as past:
        with past.atomic():
            for n in range(10_000):
                past.register_worker(f"gone-{n:05}", kind="consumer", queues=["work"])
                if n % 1000 == 0:
                    past.heartbeat_worker(f"gone-{n:05}", processed=n, failed=1)
    db.create_queue("work", visibility_timeout=3600)
    db.register_worker("live", kind="consumer", queues=["work"])
    db.enqueue_many("work", [{"n": n, "text": "<b>x</b>" * 10} for n in range(2000)])
    while db.dequeue_many("work", 500, worker="live"):
        pass
    app = open_console("ops_console.py")
    [jobs] = [d.value for d in app.dataframe if "lease ends in" in d.value.columns]
    [consumers] = [d.value for d in app.dataframe if "last heartbeat" in d.value.columns]
    assert len(jobs) == 200 and len(consumers) == 200
    assert consumers.iloc[0]["worker"] == "live"
    assert consumers.iloc[0]["running"] == 200  # of the jobs listed
    captions = " ".join(messages(app, "caption"))
    assert "2000 job(s) running (the 200 longest running shown)" in captions
    assert "10001 consumer(s), 10000 lost (200 shown" in captions

    app = open_console("admin_console.py")
    [workers] = [d.value for d in app.dataframe if "started" in d.value.columns]
    assert len(workers) == 200 and workers.iloc[0]["id"] == "live"
    [chart] = [c.proto for c in app.get("vega_lite_chart") if "consumer" in c.proto.spec]
    drawn = {name for data in [chart.data, *(d.data for d in chart.datasets)] if data.data
             for name in pa.ipc.open_stream(data.data).read_all().column("consumer").to_pylist()}
    assert len(drawn) == 20 and "gone-09000" in drawn


#: A group whose second program exits at once (FATAL after its one try), both stopped at start.
MIXED = HEADER + """

[program:good]
command=sleep 600
autostart=false
startsecs=0

[program:broken]
command=false
autostart=false
startsecs=1
startretries=0

[group:mixed]
programs=good,broken
"""


@contextmanager
def supervisord_on(config: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real supervisord on ``config`` (its URL and process), answering; stopped at the end."""
    folder = Path(tempfile.mkdtemp(prefix="pqsv"))  # a unix socket's path fits in 108 bytes
    (folder / "supervisord.conf").write_text(config)
    url = f"unix://{folder / 's.sock'}"
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "supervisord"), "-n", "-c",
         str(folder / "supervisord.conf")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(url), timeout=60, message="supervisord")
        yield url, daemon
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def processes_page(console: Console, url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv(supervision.URL_ENV, url)
    app = console("admin_console.py")
    app.radio(key="admin_page").set_value("Processes")
    return run(app)


@pytest.mark.e2e
def test_a_group_start_with_a_program_that_fails_to_start_says_so(
    processes_console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """supervisord answers a group's start with one status per program instead of a fault:
    a member that goes FATAL is an error on the page, not "Started"."""
    with supervisord_on(MIXED) as (url, _):
        with pytest.raises(SupervisorRefused, match="broken"):
            supervision.start("broken", url)  # one program: a fault, as before
        app = processes_page(processes_console, url, monkeypatch)
        app.button(key="proc_start_mixed:*").click()
        run(app)
        [error] = messages(app, "error")
        assert error.startswith("Start mixed:*: supervisord refused") and "broken" in error
        assert not messages(app, "success")
        wait_for(lambda: {p.name: p.state for p in supervision.programs(url)}["broken"]
                 == "FATAL", timeout=30, message="broken to give up")
        shown = run(app).dataframe[0].value.set_index("program")["state"].to_dict()
        assert shown == {"mixed:good": "RUNNING", "mixed:broken": "FATAL"}


@pytest.mark.e2e
def test_supervisord_gone_between_render_and_click_is_a_message(
    processes_console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    with supervisord_on(MIXED) as (url, daemon):
        app = processes_page(processes_console, url, monkeypatch)
        daemon.terminate()
        daemon.wait(timeout=30)
        app.button(key="proc_start_mixed:good").click()
        run(app)
        [error] = messages(app, "error")
        assert error.startswith("Start mixed:good: supervisord is not running")
        [warning] = messages(app, "warning")
        assert "supervisord is not running" in warning and not app.dataframe


def _answers(url: str) -> bool:
    try:
        supervision.programs(url)
    except SupervisorUnavailable:
        return False
    return True


def test_bad_thresholds_and_a_queue_deleted_before_submit_are_messages(
    open_console: Console, db: Queue
) -> None:
    """Values outside a field's bounds (negative, NaN, beyond 100 %, beyond 2**63) never reach
    the library, a huge age is a message, and a queue deleted by someone else between render
    and submit is a message: the stored settings are unchanged each time."""
    db.create_queue("billing", alert_depth=10)
    app = open_console("admin_console.py")
    app.radio(key="admin_page").set_value("Queues")
    run(app).selectbox(key="manage_queue").set_value("billing")
    run(app)
    before = db.list_queues()[0].alert_depth, db.list_queues()[0].alert_oldest_age
    for key, value in [("alert_depth", -1), ("alert_oldest_age", float("nan")),
                       ("alert_failure_rate", 1e300), ("alert_dead_letters", 2**63)]:
        app.number_input(key=f"edit_billing_{key}").set_value(value)
        click(app, "Save settings")
        assert not messages(app, "error")
    app.number_input(key="edit_billing_alert_oldest_age").set_value(1e300)
    click(app, "Save settings")
    assert messages(app, "error") == [
        "alert_oldest_age must be at most 3.16224e+07 seconds, not 1e+300"]
    [info] = db.list_queues()
    assert (info.alert_depth, info.alert_oldest_age, info.alert_failure_rate,
            info.alert_dead_letters) == (*before, None, None)
    app.number_input(key="edit_billing_alert_oldest_age").set_value(60.0)
    db.delete_queue("billing")
    click(app, "Save settings")
    assert messages(app, "error") == ["no queue named 'billing'"]
    assert not db.list_queues()


def test_running_now_alert_badges_and_timelines_show_hostile_text_as_text(
    open_console: Console, db: Queue
) -> None:
    """A task name, worker id, progress message and error with Markdown, HTML and URLs, on a
    queue whose name GitHub's rules would link, with every alert firing."""
    db.create_queue(QUEUE, visibility_timeout=3600, max_attempts=2, alert_depth=1,
                    alert_failure_rate=0.01, alert_dead_letters=1)
    db.enqueue(QUEUE, {"md": IMAGE}, headers={"task": f"{IMAGE}<script>alert(1)</script>"})
    failed = db.dequeue(QUEUE, worker=WORKER)
    assert failed is not None
    db.nack(failed, error=ERROR, delay=0)
    job = db.dequeue(QUEUE, worker=WORKER)
    assert job is not None
    db.set_progress(job, 0.5, REASON)
    db.enqueue(QUEUE, {"n": 2})
    db.enqueue(QUEUE, {"n": 3})
    for _ in range(2):  # job 2 twice: dead
        claimed = db.dequeue(QUEUE, worker=WORKER)
        assert claimed is not None
        db.nack(claimed, error=ERROR, delay=0)
    assert {a.kind for a in db.alerts()} >= {"depth", "failure_rate", "dead_letters"}
    db.register_worker(WORKER, kind="consumer", queues=[QUEUE], host=HOST)

    app = open_console("ops_console.py")
    shown = " ".join(assert_shown_as_text(app))
    assert f"{QUEUE}: " in shown  # the badges, readable
    [running] = [d.value for d in app.dataframe if "lease ends in" in d.value.columns]
    assert running.iloc[0]["message"] == REASON and running.iloc[0]["worker"] == WORKER
    app.number_input(key="detail_id").set_value(job.id)  # its timeline: failed, claimed
    assert_shown_as_text(run(app))
    timeline = [d.value for d in app.dataframe if "event" in d.value.columns][0]
    assert WORKER in set(timeline["worker"])
    app = open_console("admin_console.py")
    assert_shown_as_text(app)
    app.radio(key="admin_page").set_value("Queues")
    assert_shown_as_text(run(app))
