"""The process executor with real child processes and real signals: what a job's run gives,
and what a handler that hangs, holds the GIL, crashes, leaks or ignores a cancel cannot do to
the worker (persistent_queue/executors.py; handlers in executor_handlers.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import Job, Queue
from persistent_queue.errors import InvalidArgument
from persistent_queue.executors import Outcome, ProcessExecutor
from persistent_queue.worker_routing import Routed
from tests.integration import executor_handlers
from tests.support import ROOT, in_thread, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads processes from /proc")

HANDLERS = "tests.integration.executor_handlers"
NEVER = threading.Event()

Make = Callable[..., ProcessExecutor]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Queue]:
    """The database the jobs are claimed from (the children open it only when a job needs)."""
    with Queue(tmp_path / "queue.db", durability="normal") as q:
        yield q


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    """Started executors running ``act`` and the handlers' app; all killed after the test."""
    made: list[ProcessExecutor] = []

    def make_executor(size: int = 1, *, db: str | None = None, handler: str = f"{HANDLERS}:act",
                      **options: Any) -> ProcessExecutor:
        executor = ProcessExecutor(size=size, db=db or str(tmp_path / "queue.db"),
                                   queue_options={"durability": "normal"}, handler=handler,
                                   app=f"{HANDLERS}:app", worker_id="w-test", **options)
        made.append(executor)
        executor.start()
        return executor

    yield make_executor
    for executor in made:
        executor.shutdown(kill=True)


def claimed(q: Queue, payload: Any) -> Job:
    q.enqueue("work", payload)
    job = q.dequeue("work", visibility_timeout=600)
    assert job is not None
    return job


def task_job(q: Queue, task: Any, *args: Any) -> Job:
    task.options(queue="work").delay_on(q, *args)
    job = q.dequeue("work", visibility_timeout=600)
    assert job is not None
    return job


def run(executor: ProcessExecutor, job: Job, *, slot: int = 0, timeout: float | None = 30,
        cancel: threading.Event = NEVER, grace: float = 5) -> Outcome:
    return executor.run(job, slot=slot, timeout=timeout, cancel=cancel, grace=grace)


def alive(pid: int | None) -> bool:
    """Whether ``pid`` is a running process (a zombie is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def rss(pid: int) -> int:
    """Resident memory of ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def started(folder: Path, job: Job) -> int:
    """Wait until ``job`` has begun in a child; that child's pid."""
    path = folder / str(job.id)
    wait_for(lambda: path.exists() and path.read_text(), timeout=30,
             message=f"job {job.id} to start")
    return int(path.read_text())


# -- what a run gives ----------------------------------------------------------------------


def test_a_handler_job_runs_in_the_slots_child(make: Make, store: Queue,
                                               tmp_path: Path) -> None:
    executor = make(2)
    first, second = executor.pids()
    assert first and second and os.getpid() not in (first, second) and first != second
    job = claimed(store, {"do": "ok", "started": str(tmp_path)})
    outcome = run(executor, job, slot=1)
    assert outcome == Outcome("ok", duration=outcome.duration)
    assert started(tmp_path, job) == second
    assert outcome.routed == Routed() and 0 < outcome.duration < 30


def test_a_task_gives_its_result_as_stored(make: Make, store: Queue) -> None:
    job = task_job(store, executor_handlers.double, 21)
    outcome = run(make(), job)
    assert outcome.kind == "ok" and outcome.error is None
    assert outcome.routed == Routed(task="double", result={"n": 21, "double": 42,
                                                           "job": job.id})


def test_an_exception_is_an_error_with_its_traceback(make: Make, store: Queue) -> None:
    job = claimed(store, {"do": "boom"})
    outcome = run(make(), job)
    assert outcome.kind == "error" and outcome.error is not None
    assert outcome.error.startswith(f"ValueError: boom in job {job.id}\n")
    assert "Traceback" in outcome.error and "executor_handlers.py" in outcome.error


def test_an_exception_that_cannot_be_pickled_still_arrives_as_text(make: Make,
                                                                   store: Queue) -> None:
    outcome = run(make(), claimed(store, {"do": "unpicklable"}))
    assert outcome.kind == "error"
    assert outcome.error is not None and outcome.error.startswith("RuntimeError: holds a lock")


def test_retry_gives_its_delay_and_reason(make: Make, store: Queue) -> None:
    executor = make()
    outcome = run(executor, claimed(store, {"do": "retry"}))
    assert (outcome.kind, outcome.retry_delay, outcome.retry_reason) == ("retry", 7.5,
                                                                         "try later")
    bad = run(executor, claimed(store, {"do": "bad_retry"}))
    assert bad.kind == "error" and bad.error is not None
    assert bad.error.startswith("InvalidArgument: Retry delay must be a number of seconds")


def test_a_task_the_child_does_not_have_is_an_error_naming_it(make: Make,
                                                              store: Queue) -> None:
    store.enqueue("work", {"task": "nowhere", "args": [], "kwargs": {}})
    job = store.dequeue("work")
    assert job is not None
    outcome = run(make(), job)
    assert outcome.kind == "error" and outcome.routed.unknown == "nowhere"
    assert outcome.error == "unknown task 'nowhere' (worker w-test does not have it)"


# -- handlers that would stop a worker -----------------------------------------------------


def test_a_hung_handler_is_killed_at_its_timeout_and_the_slot_goes_on(
        make: Make, store: Queue, tmp_path: Path) -> None:
    executor = make()
    job = claimed(store, {"do": "sleep", "seconds": 600, "started": str(tmp_path)})
    began = time.monotonic()
    outcome = run(executor, job, timeout=2)
    assert time.monotonic() - began < 5
    assert (outcome.kind, outcome.error) == ("timeout", "timed out after 2 s")
    killed = started(tmp_path, job)
    wait_for(lambda: not alive(killed), timeout=10, message="the hung child to be gone")
    after = claimed(store, {"do": "ok", "started": str(tmp_path)})
    assert run(executor, after).kind == "ok"
    assert started(tmp_path, after) not in (killed, None)


def test_a_gil_holding_handler_is_killed_while_the_parent_keeps_time(
        make: Make, store: Queue) -> None:
    executor = make()
    gaps: list[float] = []
    stop = threading.Event()

    def tick() -> None:
        last = time.monotonic()
        while not stop.wait(0.02):
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    began = time.monotonic()
    try:
        outcome = run(executor, claimed(store, {"do": "regex"}), timeout=2)
    finally:
        stop.set()
        ticker.join()
    assert (outcome.kind, outcome.error) == ("timeout", "timed out after 2 s")
    assert time.monotonic() - began < 5
    assert len(gaps) > 20 and max(gaps) < 1.0, max(gaps)
    assert run(executor, claimed(store, {"do": "ok"})).kind == "ok"


@pytest.mark.parametrize(("do", "death"), [
    ("exit", "exited with code 3"),
    ("segv", "killed by signal 11 (SIGSEGV)"),
    ("null", "killed by signal 11 (SIGSEGV)"),
])
def test_a_child_that_dies_is_a_crash_and_the_next_job_runs(make: Make, store: Queue,
                                                            do: str, death: str) -> None:
    executor = make()
    [before] = executor.pids()
    outcome = run(executor, claimed(store, {"do": do}))
    assert (outcome.kind, outcome.error) == ("crashed", f"worker process died: {death}")
    assert not alive(before)
    assert run(executor, claimed(store, {"do": "ok"})).kind == "ok"
    assert executor.pids()[0] not in (before, None)


def test_stop_signals_sent_to_a_child_do_not_stop_its_job(make: Make, store: Queue,
                                                          tmp_path: Path) -> None:
    executor = make()
    job = claimed(store, {"do": "sleep", "seconds": 1.5, "started": str(tmp_path)})
    thread, result = in_thread(lambda: run(executor, job))
    child = started(tmp_path, job)
    os.kill(child, signal.SIGINT)
    os.kill(child, signal.SIGTERM)
    thread.join(30)
    assert result["result"].kind == "ok"
    assert executor.pids() == [child]


def test_a_memory_leak_stays_in_the_child_and_goes_with_it(make: Make, store: Queue,
                                                           tmp_path: Path) -> None:
    leak = 128 * 1024 * 1024
    executor = make(max_tasks_per_child=2)
    parent_before = rss(os.getpid())
    job = claimed(store, {"do": "leak", "bytes": leak, "started": str(tmp_path)})
    assert run(executor, job).kind == "ok"
    leaky = started(tmp_path, job)
    leaky_rss = rss(leaky)
    assert leaky_rss > leak
    assert rss(os.getpid()) - parent_before < leak // 4
    assert run(executor, claimed(store, {"do": "ok"})).kind == "ok"  # the second: it exits
    wait_for(lambda: not alive(leaky), timeout=10, message="the leaky child to exit")
    fresh = claimed(store, {"do": "ok", "started": str(tmp_path)})
    assert run(executor, fresh).kind == "ok"
    assert started(tmp_path, fresh) != leaky
    # Compared with the leaky child, not with a constant: what a fresh child holds depends
    # on what the forkserver imported before (a whole suite's worth in one test process).
    assert rss(started(tmp_path, fresh)) < leaky_rss - leak // 2


def test_after_max_tasks_per_child_a_new_child_takes_over(make: Make, store: Queue,
                                                          tmp_path: Path) -> None:
    executor = make(max_tasks_per_child=2)
    pids = []
    for _ in range(5):
        job = claimed(store, {"do": "ok", "started": str(tmp_path)})
        assert run(executor, job).kind == "ok"
        pids.append(started(tmp_path, job))
    assert pids[0] == pids[1] and pids[2] == pids[3]
    assert len({pids[0], pids[2], pids[4]}) == 3
    wait_for(lambda: not alive(pids[0]) and not alive(pids[2]), timeout=10,
             message="the retired children to exit")


# -- cancellation --------------------------------------------------------------------------


def test_a_cooperative_task_stops_at_its_cancellation_point_without_a_kill(
        make: Make, store: Queue, tmp_path: Path) -> None:
    executor = make()
    job = task_job(store, executor_handlers.polite, str(tmp_path))
    cancel = threading.Event()
    thread, result = in_thread(lambda: run(executor, job, timeout=None, cancel=cancel,
                                           grace=60))
    child = started(tmp_path, job)
    began = time.monotonic()
    cancel.set()
    thread.join(60)
    outcome = result["result"]
    assert outcome.kind == "cancelled" and time.monotonic() - began < 30
    assert outcome.error is not None and "cancel" in outcome.error
    assert executor.pids() == [child] and alive(child)
    assert run(executor, claimed(store, {"do": "pid"})).kind == "ok"
    assert executor.pids() == [child]


def test_a_handler_that_ignores_the_cancel_is_killed_after_the_grace(
        make: Make, store: Queue, tmp_path: Path) -> None:
    executor = make()
    job = claimed(store, {"do": "sleep", "seconds": 600, "started": str(tmp_path)})
    cancel = threading.Event()
    thread, result = in_thread(lambda: run(executor, job, timeout=None, cancel=cancel,
                                           grace=1))
    child = started(tmp_path, job)
    began = time.monotonic()
    cancel.set()
    thread.join(30)
    outcome = result["result"]
    assert 1 <= time.monotonic() - began < 5
    assert outcome.kind == "cancelled"
    assert outcome.error == ("cancelled; the handler did not stop within 1 s and its process "
                             "was killed")
    wait_for(lambda: not alive(child), timeout=10, message="the killed child to be gone")
    assert run(executor, claimed(store, {"do": "ok"})).kind == "ok"


def test_a_job_cancelled_before_it_starts_does_not_run(make: Make, store: Queue,
                                                       tmp_path: Path) -> None:
    executor = make()
    cancel = threading.Event()
    cancel.set()
    job = claimed(store, {"do": "ok", "started": str(tmp_path)})
    assert run(executor, job, cancel=cancel).kind == "cancelled"
    assert not (tmp_path / str(job.id)).exists()


def test_progress_written_in_the_child_is_stored(db_url: str, real_queue: Queue,
                                                 make: Make) -> None:
    job = task_job(real_queue, executor_handlers.progress, 3)
    outcome = run(make(db=db_url), job)
    assert outcome.routed.result == 3
    progress = real_queue.get_job(job.id).progress
    assert progress is not None and tuple(progress) == (1.0, "step 3")


# -- the children's lives ------------------------------------------------------------------


def test_a_handler_module_of_the_working_directory_imports_in_the_children(
        make: Make, store: Queue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "project_tasks_7f3a.py").write_text(
        "import os\n\ndef handle(job):\n    open(str(job.id), 'w').write(os.getcwd())\n")
    monkeypatch.chdir(project)
    monkeypatch.syspath_prepend(str(project))  # what `pq worker` does for the current directory
    executor = make(handler="project_tasks_7f3a:handle")
    job = claimed(store, {})
    assert run(executor, job).kind == "ok"
    assert (project / str(job.id)).read_text() == str(project)


def test_a_handler_that_cannot_be_imported_fails_start_with_the_reason(make: Make) -> None:
    with pytest.raises(InvalidArgument, match="cannot import handler module 'no_such_mod_1'"):
        make(handler="no_such_mod_1:handle")


def test_shutdown_stops_the_children_and_kill_stops_a_running_job(
        make: Make, store: Queue, tmp_path: Path) -> None:
    idle = make(2)
    pids = idle.pids()
    idle.shutdown()
    assert not any(alive(pid) for pid in pids)
    busy = make()
    job = claimed(store, {"do": "sleep", "seconds": 600, "started": str(tmp_path)})
    thread, result = in_thread(lambda: run(busy, job, timeout=None))
    child = started(tmp_path, job)
    busy.shutdown(kill=True)
    thread.join(30)
    assert result["result"].kind == "crashed" and not alive(child)
    assert run(busy, claimed(store, {"do": "ok"})).kind == "crashed"


_LOGGING_PARENT = """
import sys, threading
from persistent_queue import Queue
from persistent_queue.executors import ProcessExecutor
from persistent_queue.logs import setup_logging
setup_logging("INFO", json_lines=True)
with Queue(sys.argv[1], durability="normal") as q:
    q.enqueue("work", {"hello": "children"})
    job = q.dequeue("work")
    with ProcessExecutor(size=1, db=sys.argv[1], queue_options={}, app=None, worker_id="w",
                         handler="persistent_queue.handlers:echo") as executor:
        executor.run(job, slot=0, timeout=30, cancel=threading.Event(), grace=0)
"""


def test_a_child_logs_like_its_worker(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-c", _LOGGING_PARENT, str(tmp_path / "q.db")],
                          cwd=ROOT, env=subprocess_env, capture_output=True, text=True,
                          timeout=120, check=True)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    [echo] = [line for line in lines if line["logger"] == "persistent_queue.handlers"]
    assert echo["message"] == "echo {'hello': 'children'}" and echo["job_id"] == 1


def _parent(tmp_path: Path, subprocess_env: dict[str, str],
            *payloads: dict[str, Any]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """``executor_parent`` running ``payloads`` in its own session; its pids once started."""
    command = [sys.executable, "-m", "tests.integration.executor_parent", str(tmp_path),
               *(json.dumps(p) for p in payloads)]
    process = subprocess.Popen(command, cwd=ROOT, env=subprocess_env, text=True,
                               stdout=subprocess.PIPE, start_new_session=True)
    pids = tmp_path / "pids.json"
    wait_for(lambda: pids.exists() or process.poll() is not None, timeout=60,
             message="the parent to start its executor")
    assert process.poll() is None, process.communicate()
    return process, json.loads(pids.read_text())


def test_no_child_outlives_a_parent_killed_with_sigkill(tmp_path: Path,
                                                        subprocess_env: dict[str, str]) -> None:
    process, pids = _parent(tmp_path, subprocess_env,
                            {"do": "sleep", "seconds": 600, "started": str(tmp_path)},
                            {"do": "regex", "started": str(tmp_path)}, {"do": "ok"})
    children = pids["children"]
    wait_for(lambda: all((tmp_path / str(job_id)).exists() for job_id in (1, 2)), timeout=30,
             message="the sleeping and the GIL-holding job to start")
    process.kill()
    process.wait()  # not communicate(): a surviving child would hold its stdout open
    assert process.stdout is not None
    process.stdout.close()
    wait_for(lambda: not any(alive(pid) for pid in [*children, pids["forkserver"]]),
             timeout=15, message="every child and the forkserver to be gone")


def test_stop_signals_to_the_process_group_reach_only_the_parent(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    process, _ = _parent(tmp_path, subprocess_env,
                         {"do": "sleep", "seconds": 2, "started": str(tmp_path)})
    wait_for(lambda: (tmp_path / "1").exists(), timeout=30, message="the job to start")
    os.killpg(process.pid, signal.SIGINT)
    os.killpg(process.pid, signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert json.loads(out) == {"outcomes": ["ok"], "signals": [signal.SIGINT, signal.SIGTERM]}
