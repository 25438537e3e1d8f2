"""Control of running jobs, tried as a hostile user and operator would, with real ``pq worker``
processes and real signals: handlers that fork or start programs, stop signals while children
run, a child killed by hand, a worker that dies with a cancel pending, load on the process
executor. Handlers: :mod:`tests.e2e.hostile_handlers`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistent_queue import DeadLetter, JobState, Queue
from tests.support import ROOT, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXECUTORS = ["thread", "process"]


class Workers:
    """``pq worker`` processes running the hostile handlers; killed at the end if still up."""

    def __init__(self, tmp_path: Path, db_url: str, env: dict[str, str]) -> None:
        self.tmp_path, self.db_url = tmp_path, db_url
        self.env = {**env, "HOSTILE_DIR": str(tmp_path), "HOSTILE_DB": db_url}
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *flags: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp_path / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "persistent_queue", "worker", "--db", self.db_url,
             "--handler", "tests.e2e.hostile_handlers:act", "--queues", "hostile",
             "--wait", "0.2", "--log-dir", "", "--log-format", "text", *flags],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group, as under supervisord
        log.close()
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "".join(path.read_text() for path in sorted(self.tmp_path.glob("worker-*.log")))

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
        """Warm stop; the exit code (fails the test if it does not exit in time)."""
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not stop within {timeout} s:\n{self.logs()[-3000:]}")

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def q(db_url: str) -> Iterator[Queue]:
    queue = Queue(db_url, durability="normal")
    queue.create_queue("hostile", visibility_timeout=30)
    yield queue
    queue.close()


@pytest.fixture
def workers(tmp_path: Path, db_url: str, subprocess_env: dict[str, str]) -> Iterator[Workers]:
    running = Workers(tmp_path, db_url, subprocess_env)
    yield running
    running.kill_all()


def lines(tmp_path: Path, name: str) -> list[tuple[int, int]]:
    """The ``(job id, pid)`` lines the handlers wrote to ``name``."""
    path = tmp_path / name
    if not path.exists():
        return []
    return [(int(a), int(b)) for a, b in (line.split() for line in path.read_text().splitlines())]


def dead_letter(q: Queue, job_id: int, timeout: float = 20) -> DeadLetter:
    return wait_for(lambda: next((d for d in q.dead_letters("hostile") if d.id == job_id), None),
                    timeout=timeout, message=f"job {job_id}'s dead letter")


# -- handlers that lie or cannot be described ------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_job_cancelled_uninvited_and_an_unprintable_error_fail_the_attempt(
        q: Queue, workers: Workers, executor: str) -> None:
    liar = q.enqueue("hostile", {"do": "cancelled"}, max_attempts=1)
    unprintable = q.enqueue("hostile", {"do": "unprintable"}, max_attempts=1)
    proc = workers.start("--executor", executor)
    lied = dead_letter(q, liar.id, timeout=15)  # not left to the 30 s lease
    assert lied.reason == "failed 1 of 1 attempts"
    assert lied.last_error.startswith("JobCancelled: nobody asked")
    hidden = dead_letter(q, unprintable.id)
    assert hidden.reason == "failed 1 of 1 attempts"
    assert hidden.last_error.startswith("UnprintableError: <exception str() failed>")
    assert workers.stop(proc) == 0


# -- handlers that fork or start programs ----------------------------------------------------


def end_forked_copies(tmp_path: Path) -> None:
    """Kill what a failing run left behind: forked copies stuck in the worker's code."""
    for _, pid in lines(tmp_path, "forked"):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("how", ["fork_exit", "fork_return"])
def test_a_handler_that_forks_runs_once_and_its_copy_never_speaks_for_it(
        q: Queue, workers: Workers, tmp_path: Path, executor: str, how: str) -> None:
    forking = q.enqueue("hostile", {"do": how}, max_attempts=1)
    after = q.enqueue("hostile", {"do": "ok"})
    proc = workers.start("--executor", executor)
    try:
        wait_for(lambda: q.get_job(after.id).state is JobState.DONE, timeout=20,
                 message="the next job done")
        job = q.get_job(forking.id)
        assert job.state is JobState.DONE and job.attempts == 1, (job, workers.logs()[-2000:])
        assert [event.event for event in q.history(forking.id)] == [
            "enqueued", "claimed", "acked"]
        assert [job_id for job_id, _ in lines(tmp_path, "forked")] == [forking.id]
        assert [job_id for job_id, _ in lines(tmp_path, "finished")] == [forking.id, after.id]
        assert workers.stop(proc, timeout=15) == 0
    finally:
        end_forked_copies(tmp_path)


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie nobody reaps counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.mark.sqlite_only  # process groups: the same on both backends
def test_programs_a_handler_started_die_with_it_at_its_timeout_and_on_cancel(
        q: Queue, workers: Workers, tmp_path: Path) -> None:
    timed = q.enqueue("hostile", {"do": "spawn"}, timeout=1, max_attempts=1)
    cancelled = q.enqueue("hostile", {"do": "spawn"})
    proc = workers.start("--executor", "process", "--concurrency", "2", "--cancel-grace", "0.5")
    programs = [tmp_path / f"spawned-{job.id}" for job in (timed, cancelled)]
    try:
        wait_for(lambda: all(path.exists() for path in programs), timeout=20,
                 message="both handlers to start their program")
        pids = [int(path.read_text()) for path in programs]
        q.cancel(cancelled.id)
        assert dead_letter(q, timed.id).last_error == "timed out after 1 s"
        wait_for(lambda: q.get_job(cancelled.id).state is JobState.CANCELLED, timeout=20,
                 message="the cancelled job's child killed after the grace")
        wait_for(lambda: all(gone(pid) for pid in pids), timeout=5,
                 message="the programs the killed handlers started to die with them")
        assert workers.stop(proc) == 0
    finally:
        for path in programs:
            if path.exists() and not gone(pid := int(path.read_text())):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.sqlite_only  # process groups: the same on both backends
def test_a_stop_signal_to_the_workers_group_spares_the_programs_its_jobs_run(
        q: Queue, workers: Workers, tmp_path: Path) -> None:
    job = q.enqueue("hostile", {"do": "program", "seconds": 1}, max_attempts=1)
    proc = workers.start("--executor", "process")
    wait_for(lambda: (tmp_path / f"program-{job.id}").exists(), timeout=20,
             message="the job to start its program")
    os.killpg(proc.pid, signal.SIGTERM)  # `supervisorctl stop` with stopasgroup, Ctrl-C
    assert proc.wait(30) == 0  # a warm stop: the job finished first
    done = q.get_job(job.id)
    assert done.state is JobState.DONE, (done, q.dead_letters("hostile"))


# -- stop signals while children run ---------------------------------------------------------


def test_a_cold_stop_kills_the_children_before_it_gives_their_jobs_back(
        q: Queue, workers: Workers, tmp_path: Path) -> None:
    jobs = [q.enqueue("hostile", {"do": "watch"}) for _ in range(4)]
    proc = workers.start("--executor", "process", "--concurrency", "4")
    wait_for(lambda: len(lines(tmp_path, "started")) == 4, timeout=30,
             message="the four watching handlers to start")
    proc.send_signal(signal.SIGTERM)  # warm stop: they never finish by themselves
    wait_for(lambda: "finishing 4 job(s) in hand" in workers.logs(), timeout=20,
             message="the warm stop under way")
    proc.send_signal(signal.SIGTERM)  # cold stop
    assert proc.wait(30) == 3
    assert lines(tmp_path, "given_back") == [], "a handler still ran with its job given back"
    for job in jobs:
        back = q.get_job(job.id)
        assert back.state is JobState.READY and back.attempts == 0
    assert all(gone(pid) for _, pid in lines(tmp_path, "started"))


def test_a_child_killed_by_hand_fails_its_attempt_and_a_warm_stop_waits_for_the_others(
        q: Queue, workers: Workers, tmp_path: Path) -> None:
    doomed = q.enqueue("hostile", {"do": "sleep", "seconds": 600}, max_attempts=1)
    slow = q.enqueue("hostile", {"do": "sleep", "seconds": 1.5})
    proc = workers.start("--executor", "process", "--concurrency", "2")
    wait_for(lambda: len(lines(tmp_path, "started")) == 2, timeout=20,
             message="both jobs running")
    pids = dict(lines(tmp_path, "started"))
    os.kill(pids[doomed.id], signal.SIGKILL)  # an operator's pkill
    assert dead_letter(q, doomed.id).last_error == "worker process died: killed by signal 9 " \
                                                   "(SIGKILL)"
    proc.send_signal(signal.SIGTERM)  # warm: the other child finishes its job first
    assert proc.wait(30) == 0
    assert q.get_job(slow.id).state is JobState.DONE
    assert all(gone(pid) for pid in pids.values())


# -- load on the process executor (held) -----------------------------------------------------


@pytest.mark.parametrize(("count", "flags"), [
    (500, ["--concurrency", "8"]),
    (100, ["--concurrency", "4", "--max-tasks-per-child", "1"]),
], ids=["eight_children", "one_job_per_child"])
def test_every_job_runs_exactly_once_on_the_process_executor(
        q: Queue, workers: Workers, tmp_path: Path, count: int, flags: list[str]) -> None:
    ids = [job.id for job in q.enqueue_many("hostile", [{"do": "ok"}] * count)]
    proc = workers.start("--executor", "process", *flags)
    wait_for(lambda: q.stats("hostile").done == count, timeout=60,
             message=f"{count} jobs done")
    assert workers.stop(proc) == 0
    runs = Counter(job_id for job_id, _ in lines(tmp_path, "started"))
    assert sorted(runs) == ids and set(runs.values()) == {1}
    children = {pid for _, pid in lines(tmp_path, "started")}
    assert len(children) == (count if "--max-tasks-per-child" in flags else 8)
    assert all(q.get_job(i).attempts == 1 for i in ids[:: count // 10])


# -- a worker gone with a cancel pending; many timeouts on threads (held) --------------------


def test_a_job_cancelled_after_its_worker_died_is_cancelled_never_run_again(
        q: Queue, workers: Workers, tmp_path: Path) -> None:
    q.update_queue("hostile", visibility_timeout=1)
    job = q.enqueue("hostile", {"do": "sleep", "seconds": 600})
    first = workers.start("--executor", "process")
    wait_for(lambda: lines(tmp_path, "started"), timeout=20, message="the job running")
    first.kill()  # SIGKILL: nothing is settled; its child goes with it
    first.wait()
    assert q.cancel(job.id, reason="its worker died").cancel_requested
    workers.start("--executor", "process")  # claims, and reaps the lease when it expires
    ended = wait_for(lambda: (j := q.get_job(job.id)).state is JobState.CANCELLED and j,
                     timeout=20, message="the expired lease cancelled")
    assert ended.cancel_reason == "its worker died"
    assert [job_id for job_id, _ in lines(tmp_path, "started")] == [job.id]
    wait_for(lambda: all(gone(pid) for _, pid in lines(tmp_path, "started")), timeout=10,
             message="the dead worker's child gone")


@pytest.mark.sqlite_only
def test_the_thread_executor_with_many_timeouts_stays_bounded(
        q: Queue, workers: Workers, tmp_path: Path) -> None:
    jobs = q.enqueue_many("hostile", [{"do": "sleep", "seconds": 600}] * 40, timeout=0.3,
                          max_attempts=1)
    procs = [workers.start("--executor", "thread", "--concurrency", "4") for _ in range(3)]
    # Past 4 abandoned handlers each stops for a restart, after settling every job (exit 1,
    # not a crash of its control thread's last settle against the closed database: -11).
    assert [proc.wait(30) for proc in procs] == [1, 1, 1]
    assert workers.logs().count("abandoned handlers are still running") == 3
    started = [job_id for job_id, _ in lines(tmp_path, "started")]
    assert 15 <= len(started) <= 36 and len(set(started)) == len(started)  # a few per slot
    for job in jobs:
        letter = next((d for d in q.dead_letters("hostile") if d.id == job.id), None)
        assert (letter is not None) == (job.id in started)
        assert letter is None or letter.last_error == "timed out after 0.3 s"
        assert letter is not None or q.get_job(job.id).state is JobState.READY
