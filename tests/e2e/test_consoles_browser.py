"""Both consoles as real Streamlit servers, driven by Debian's headless Chromium.

Enqueue a job through the ops console's form, then see it counted in the admin console.
Then the pages an operator runs the system from: what runs now, a job's timeline, the
dead letters and supervisord's processes (a real supervisord). Screenshots go to the test's
temporary folder; with PQ_SAVE_SCREENSHOTS=1 they replace docs/ops_console.png,
docs/admin_console.png, docs/ops_busy.png, docs/ops_timeline.png, docs/admin_dead_letters.png,
docs/admin_queues.png and docs/admin_processes.png.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from persistent_queue import Queue, supervision
from tests.browser_support import browser_page, require_chromium
from tests.supervision_support import running_supervisord
from tests.support import free_ports, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def chromium() -> str:
    return require_chromium()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def start_console(tmp_path: Path, subprocess_env: dict[str, str]
                  ) -> Iterator[Callable[..., str]]:
    """Start ``streamlit run <script>`` on a free port; yields a starter returning its URL."""
    started: list[subprocess.Popen[bytes]] = []

    def start(script: str, db: Path, extra: dict[str, str] | None = None) -> str:
        [port] = free_ports(1)
        # Run from the test's folder with a relative database path, as `make run` does from
        # the project (the console shows the path: it should read data/queue.db).
        env = {**subprocess_env, "PQ_DB": str(db.relative_to(tmp_path)), **(extra or {})}
        env.pop("PQ_CONSOLE_PASSWORD", None)
        log = (tmp_path / f"{script}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / script), "--server.port",
             str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _healthy(url) or process.poll() is not None, timeout=120,
                 message=f"{script} to serve")
        assert process.poll() is None, (tmp_path / f"{script}.log").read_text()
        return url

    yield start
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _seed(db: Path) -> None:
    """Some history so the admin screenshot has numbers, a chart and a consumer."""
    with Queue(db, durability="normal") as q:
        q.create_queue("webhooks", max_attempts=1)
        q.enqueue_many("emails", [{"to": f"user{n}@example.com"} for n in range(20)])
        for _ in range(12):
            job = q.dequeue("emails")
            assert job is not None
            q.ack(job)
        failing = q.dequeue("emails")
        assert failing is not None
        q.nack(failing, error="SMTP 451 try again later", delay=600)
        q.enqueue("webhooks", {"url": "https://example.com/hook"})
        hook = q.dequeue("webhooks")
        assert hook is not None
        q.nack(hook, error="HTTP 410 Gone")
        q.register_worker("consumer-emails-1", kind="consumer", queues=["emails"])
        q.heartbeat_worker("consumer-emails-1", processed=12, failed=1)
        q.register_worker("producer-signup", kind="producer", queues=["emails"])


# The first run installs chromium (two apt-get commands of up to 1200 s each, in the session
# fixture): that counts in this test's time, far beyond the suite's 300 s.
@pytest.mark.timeout(2700)
def test_enqueue_in_ops_console_is_counted_in_admin_console(
    chromium: str, start_console: Callable[..., str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    db = tmp_path / "data" / "queue.db"
    db.parent.mkdir()
    _seed(db)
    ops_url = start_console("ops_console.py", db)
    admin_url = start_console("admin_console.py", db)
    docs = ROOT / "docs" if os.environ.get("PQ_SAVE_SCREENSHOTS") == "1" else tmp_path
    # Timeouts of 90 s: generous, the machine is shared.
    with browser_page(90_000, viewport={"width": 1400, "height": 1500}) as page:
        page.goto(ops_url)
        expect(page.get_by_text("Enqueue a job")).to_be_visible()
        page.get_by_label("New queue name").fill("signups")
        page.get_by_label("Payload (JSON)").fill('{"user": "ada", "plan": "pro"}')
        page.get_by_label("Headers (key=value lines, or a JSON object)").fill("tenant=acme")
        page.get_by_role("button", name="Enqueue", exact=True).click()
        expect(page.get_by_text("Enqueued job 22 on queue 'signups'.")).to_be_visible()
        with Queue(db) as q:
            job = q.get_job(22)
        assert (job.queue, job.payload, job.headers) == (
            "signups", {"user": "ada", "plan": "pro"}, {"tenant": "acme"})
        expect(page.get_by_test_id("stJson").first).to_contain_text("ada")
        page.screenshot(path=str(docs / "ops_console.png"), full_page=True)

        page.set_viewport_size({"width": 1400, "height": 1800})
        page.goto(admin_url)
        expect(page.get_by_text("signups (1 ready)").first).to_be_visible()
        # 7 ready emails from the seed and the job enqueued above. (`first`: while the
        # metrics fragment refreshes, the old and new element may both be in the page.)
        ready = page.get_by_test_id("stMetric").filter(has_text="Ready now")
        expect(ready.filter(has_text="8").first).to_be_visible()
        charts = page.get_by_test_id("stVegaLiteChart")
        expect(charts).to_have_count(2)  # throughput, and jobs per consumer
        expect(charts.last.locator("canvas, svg").first).to_be_visible()
        page.screenshot(path=str(docs / "admin_console.png"), full_page=True)

        # Live metrics: a job enqueued elsewhere shows up without reloading the page.
        with Queue(db) as q:
            q.enqueue("signups", {"user": "grace"})
        expect(page.get_by_text("signups (2 ready)").first).to_be_visible()


def _seed_running(db: Path) -> int:
    """A task running on a consumer with its progress, a done job with a result, a plain-text
    dead letter, a lost consumer and an alert firing; the done job's id."""
    with Queue(db, durability="normal") as q:
        q.create_queue("images", visibility_timeout=600, alert_depth=3)
        q.create_queue("lines", max_attempts=1)
        q.enqueue("images", {"file": "cat.png", "width": 640}, headers={"task": "tasks.resize"})
        job = q.dequeue("images", worker="consumer_00:4711")
        assert job is not None
        q.set_progress(job, 0.6, "resized 3 of 5 sizes")
        report = q.enqueue("images", {"file": "dog.png", "width": 320})
        done = q.dequeue("images", worker="consumer_01:4712")
        assert done is not None and done.id == report.id
        q.ack(done, result={"sizes": [320, 160, 80]})
        q.enqueue_many("images", [{"file": f"img{n}.png"} for n in range(4)])
        q.enqueue("lines", "a plain text line from input.txt")
        line = q.dequeue("lines", worker="consumer_01:4712")
        assert line is not None
        q.nack(line, error="ValueError: not an e-mail address")
        q.register_worker("consumer_00:4711", kind="consumer", queues=["images"])
        q.register_worker("consumer_01:4712", kind="consumer", queues=["images", "lines"])
    with Queue(db, durability="normal", clock=lambda: time.time() - 600) as past:
        past.register_worker("consumer_00:4242", kind="consumer", queues=["images"])
    return report.id


@pytest.mark.timeout(2700)
def test_operator_pages_in_the_browser(
    chromium: str, start_console: Callable[..., str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    db = tmp_path / "data" / "queue.db"
    db.parent.mkdir()
    done_id = _seed_running(db)
    docs = ROOT / "docs" if os.environ.get("PQ_SAVE_SCREENSHOTS") == "1" else tmp_path
    with running_supervisord() as url:
        ops_url = start_console("ops_console.py", db)
        admin_url = start_console("admin_console.py", db, {"PQ_SUPERVISOR_URL": url})
        with browser_page(90_000, viewport={"width": 1400, "height": 1100}) as page:
            with Queue(db) as q:  # the consoles took a while to start: beat again
                for worker in ("consumer_00:4711", "consumer_01:4712"):
                    q.heartbeat_worker(worker)
            page.goto(ops_url)
            expect(page.get_by_text("images: depth 4 ≥ 3")).to_be_visible()
            page.get_by_role("tab", name="Running now").click()
            expect(page.get_by_text("1 job(s) running")).to_be_visible()
            expect(page.get_by_text("3 consumer(s), 1 lost")).to_be_visible()
            grids = page.get_by_role("tabpanel", name="Running now").get_by_test_id(
                "stDataFrame")
            expect(grids).to_have_count(2)
            for grid in grids.all():
                expect(grid.locator("canvas").first).to_be_visible()
            expect(page.get_by_test_id("stException")).to_have_count(0)
            page.screenshot(path=str(docs / "ops_busy.png"), full_page=True)

            page.get_by_role("tab", name="Browse jobs").click()
            page.get_by_label("…or any job id").fill(str(done_id))
            page.get_by_label("…or any job id").press("Enter")
            expect(page.get_by_text("Timeline (3 events")).to_be_visible()
            page.get_by_text("Timeline (3 events").scroll_into_view_if_needed()
            expect(page.get_by_test_id("stException")).to_have_count(0)
            page.screenshot(path=str(docs / "ops_timeline.png"), full_page=True)

            page.goto(admin_url)
            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_text("Dead letters", exact=True).click()
            expect(page.get_by_test_id("stCode").filter(
                has_text="a plain text line from input.txt")).to_be_visible()
            expect(page.get_by_text("Json Parse Error")).to_have_count(0)
            expect(page.get_by_test_id("stException")).to_have_count(0)
            page.screenshot(path=str(docs / "admin_dead_letters.png"), full_page=True)

            page.set_viewport_size({"width": 1400, "height": 1900})
            sidebar.get_by_text("Queues", exact=True).click()
            expect(page.get_by_text("images: depth 4 ≥ 3")).to_be_visible()
            expect(page.get_by_label("Depth alert (0 = none)").last).to_have_value("3")
            for grid in page.get_by_test_id("stDataFrame").all():
                expect(grid.locator("canvas").first).to_be_visible()
            expect(page.get_by_test_id("stException")).to_have_count(0)
            page.screenshot(path=str(docs / "admin_queues.png"), full_page=True)

            page.set_viewport_size({"width": 1400, "height": 1100})
            sidebar.get_by_text("Processes", exact=True).click()
            expect(page.get_by_text("3 of 3 running")).to_be_visible()
            # In the page (the header's "Stop" ends a script run), the program sleeper's.
            stop = page.get_by_test_id("stMain").get_by_role("button", name="Stop",
                                                             exact=True).first
            expect(stop).to_be_enabled()
            stop.click()
            wait_for(lambda: {p.namespec: p.state for p in supervision.programs(url)}
                     ["sleeper"] == "STOPPED", timeout=90, message="sleeper to stop")
            expect(page.get_by_text("2 of 3 running.")).to_be_visible()
            page.screenshot(path=str(docs / "admin_processes.png"), full_page=True)
