"""producer.py against hostile input files, as a real process on a real file.

A file truncated in place and written again (``logrotate copytruncate``), lines the queue
refuses mixed with good ones under ``kill -9``, lines Python's ``json`` cannot read, and a
bounded queue smaller than a batch: every good line is published exactly once, every bad
one is skipped with a log line, and the producer never dies on input.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from persistent_queue import Queue
from persistent_queue.errors import InvalidPayload
from persistent_queue.publisher import Publisher, PublishOptions
from tests.support import ROOT, wait_for

pytestmark = pytest.mark.e2e


def producer(db: Path | str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "producer.py"), "--db", str(db), "--queue", "in", *args]


def run_producer(db: Path | str, env: dict[str, str],
                 *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(producer(db, *args), env=env, capture_output=True, text=True,
                          timeout=120)


def payloads(q: Queue) -> list[object]:
    """Every job of queue "in", oldest first."""
    if not any(info.name == "in" for info in q.list_queues()):
        return []
    found: list[object] = []
    while True:
        page = q.list_jobs("in", limit=5000, offset=len(found), newest_first=False)
        found += [job.payload for job in page]
        if len(page) < 5000:
            return found


def rewrite_in_place(path: Path, text: str) -> None:
    """Truncate the file and write ``text`` into the same inode, as ``copytruncate`` does."""
    inode = path.stat().st_ino
    with path.open("r+") as handle:
        handle.truncate(0)
        handle.write(text)
    assert path.stat().st_ino == inode


def lines(prefix: str, count: int) -> str:
    return "".join(f"{prefix} {n}\n" for n in range(1, count + 1))


# -- a file truncated in place and refilled past the stored offset --------------------------

def test_file_rewritten_in_place_while_stopped_is_read_from_its_start(
        real_queue: Queue, db_path: Path, subprocess_env: dict[str, str],
        tmp_path: Path) -> None:
    source = tmp_path / "app.log"
    source.write_text(lines("old", 3))
    assert run_producer(db_path, subprocess_env, "--input", str(source)).returncode == 0
    rewrite_in_place(source, lines("new", 10))  # longer than the stored offset
    done = run_producer(db_path, subprocess_env, "--input", str(source))
    assert done.returncode == 0, done.stderr
    assert payloads(real_queue) == [f"old {n}" for n in range(1, 4)] + [
        f"new {n}" for n in range(1, 11)]
    assert "starting from its beginning" in done.stdout


def test_file_rewritten_in_place_within_one_poll_is_read_from_its_start(
        real_queue: Queue, db_path: Path, subprocess_env: dict[str, str],
        tmp_path: Path) -> None:
    source = tmp_path / "app.log"
    source.write_text(lines("old", 3))
    proc = subprocess.Popen(producer(db_path, "--input", str(source), "--follow"),
                            env=subprocess_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(payloads(real_queue)) == 3, timeout=60, message="the old lines")
        rewrite_in_place(source, lines("new", 10))
        wait_for(lambda: "new 10" in payloads(real_queue), timeout=60,
                 message="the last new line")
        with source.open("a") as handle:  # and it keeps following the rewritten file
            handle.write("new 11\n")
        wait_for(lambda: "new 11" in payloads(real_queue), timeout=60, message="an appended line")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert payloads(real_queue) == [f"old {n}" for n in range(1, 4)] + [
        f"new {n}" for n in range(1, 12)]


def test_file_rotated_by_rename_is_drained_then_the_new_file_read(
        real_queue: Queue, db_path: Path, subprocess_env: dict[str, str],
        tmp_path: Path) -> None:
    source = tmp_path / "app.log"
    source.write_text(lines("first", 2))
    proc = subprocess.Popen(producer(db_path, "--input", str(source), "--follow"),
                            env=subprocess_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(payloads(real_queue)) == 2, timeout=60, message="2 lines")
        with source.open("a") as handle:
            handle.write("first 3\n")
        source.rename(tmp_path / "app.log.1")
        source.write_text(lines("second", 2))
        wait_for(lambda: len(payloads(real_queue)) == 5, timeout=60, message="5 lines")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert payloads(real_queue) == ["first 1", "first 2", "first 3", "second 1", "second 2"]


# -- lines the queue refuses, and kill -9 ---------------------------------------------------

REFUSED = ["NaN", "18446744073709551616", "-Infinity"]  # JSON the queue cannot store


def test_refused_lines_and_kill_9_publish_every_good_line_once(
        real_queue: Queue, db_path: Path, subprocess_env: dict[str, str],
        tmp_path: Path) -> None:
    source = tmp_path / "mixed.txt"
    good = [f"good {n}" for n in range(1, 5001)]
    text = []
    for n, line in enumerate(good):
        if n % 50 == 7:  # one refused line in every batch
            text.append(REFUSED[n % len(REFUSED)])
        text.append(line)
    source.write_text("\n".join(text) + "\n")
    command = producer(db_path, "--input", str(source), "--batch", "50")
    proc = subprocess.Popen(command, env=subprocess_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: proc.poll() is not None or len(payloads(real_queue)) >= 800,
             timeout=120, interval=0.005, message="the producer to publish some lines")
    proc.kill()
    proc.wait(timeout=60)
    done = run_producer(db_path, subprocess_env, "--input", str(source), "--batch", "50")
    assert done.returncode == 0, done.stderr
    found = payloads(real_queue)
    twice = {line: count for line, count in Counter(found).items() if count > 1}
    assert twice == {}, f"{len(found)} rows for {len(good)} good lines"
    assert found == good


def test_refused_lines_are_logged_with_their_numbers(
        real_queue: Queue, db_path: Path, subprocess_env: dict[str, str],
        tmp_path: Path) -> None:
    source = tmp_path / "mixed.txt"
    oversized = '"' + "x" * (1024 * 1024) + '"'  # over the 1 MiB payload limit once encoded
    source.write_text("\n".join(["a", "NaN", "b", oversized, "c", "18446744073709551616",
                                 "d"]) + "\n")
    done = run_producer(db_path, subprocess_env, "--input", str(source))
    assert done.returncode == 0, done.stderr
    assert payloads(real_queue) == ["a", "b", "c", "d"]
    skipped = [line for line in done.stdout.splitlines() if "skipped line" in line]
    assert [n for n in (2, 4, 6) if any(f"skipped line {n} of" in s for s in skipped)] == [2, 4, 6]
    assert '"skipped": 3' in done.stderr
    again = run_producer(db_path, subprocess_env, "--input", str(source))  # offset past them
    assert again.returncode == 0 and len(payloads(real_queue)) == 4


# -- lines Python's json cannot read --------------------------------------------------------

UNREADABLE = ["9" * 5000, "[" * 100_000]  # ValueError and RecursionError from json.loads


def test_unreadable_json_is_skipped_and_the_producer_carries_on(
        real_queue: Queue, db_path: Path, subprocess_env: dict[str, str],
        tmp_path: Path) -> None:
    source = tmp_path / "strict.jsonl"
    source.write_text("\n".join(['{"n": 1}', *UNREADABLE, '{"n": 2}']) + "\n")
    done = run_producer(db_path, subprocess_env, "--input", str(source), "--format", "json")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert payloads(real_queue) == [{"n": 1}, {"n": 2}]
    assert "skipped line 2 of" in done.stdout and "skipped line 3 of" in done.stdout
    again = run_producer(db_path, subprocess_env, "--input", str(source), "--format", "json")
    assert again.returncode == 0 and len(payloads(real_queue)) == 2


def test_unreadable_json_in_auto_format_is_published_as_its_text(
        real_queue: Queue, db_path: Path, subprocess_env: dict[str, str],
        tmp_path: Path) -> None:
    source = tmp_path / "auto.txt"
    source.write_text("\n".join(['{"n": 1}', *UNREADABLE]) + "\n")
    done = run_producer(db_path, subprocess_env, "--input", str(source))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert payloads(real_queue) == [{"n": 1}, *UNREADABLE]


# -- a bounded queue smaller than a batch ---------------------------------------------------

def test_bounded_queue_gets_what_fits_and_the_rest_waits_for_room(
        real_queue: Queue, db_path: Path, subprocess_env: dict[str, str],
        tmp_path: Path) -> None:
    real_queue.create_queue("in", max_size=3)
    source = tmp_path / "ten.txt"
    source.write_text(lines("job", 10))
    log = tmp_path / "producer.log"
    command = producer(db_path, "--input", str(source))

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(command, env=subprocess_env, stdout=out,
                                    stderr=subprocess.STDOUT)

    proc = start()
    try:
        wait_for(lambda: len(payloads(real_queue)) == 3, timeout=60, message="3 jobs to fit")
        wait_for(lambda: "wait for room" in log.read_text(), timeout=60,
                 message="the producer to say it waits for room")
    finally:
        proc.send_signal(signal.SIGTERM)  # stopped while waiting: clean, offset kept
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert payloads(real_queue) == ["job 1", "job 2", "job 3"]
    proc = start()
    try:
        done: list[object] = []
        while len(done) < 10:  # a consumer makes room; the producer fills it
            job = real_queue.dequeue("in", wait=30)
            assert job is not None, f"no job after {done}"
            real_queue.ack(job)
            done.append(job.payload)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    assert done == [f"job {n}" for n in range(1, 11)]
    assert real_queue.stats("in").ready == 0


# -- upgrades and the last-resort path ------------------------------------------------------

def test_offset_stored_without_fingerprint_is_still_honoured(
        real_queue: Queue, db_path: Path, subprocess_env: dict[str, str],
        tmp_path: Path) -> None:
    source = tmp_path / "app.log"
    source.write_text(lines("line", 5))
    already = len("line 1\nline 2\n")  # as an older producer stored it: offset and inode only
    real_queue.set_value(f"producer.offset:in:{source}",
                         json.dumps({"offset": already, "inode": source.stat().st_ino}))
    done = run_producer(db_path, subprocess_env, "--input", str(source), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert payloads(real_queue) == []  # lines 3-5 are not JSON: skipped, numbered from 3
    assert [f"skipped line {n} of" in done.stdout for n in (3, 4, 5)] == [True] * 3
    source.write_text(lines("line", 5))  # same bytes: nothing to tell it from the first file
    assert "skipped line" not in run_producer(
        db_path, subprocess_env, "--input", str(source), "--format", "json").stdout


def test_lines_refused_only_together_get_one_commit_each_with_its_offset(
        real_queue: Queue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "app.log"
    source.write_text(lines("line", 4))
    enqueue_many = real_queue.enqueue_many

    stored: list[int] = []  # the offsets of the commits (stored before their jobs)

    def refuse_batches(queue: str, batch: list[object], **options: Any) -> Any:
        if len(batch) > 1 or batch == ["line 3"]:
            stored.pop()  # rolled back with the refused jobs
            raise InvalidPayload("refused as a batch" if len(batch) > 1 else "refused alone")
        return enqueue_many(queue, batch, **options)

    compare_and_set = real_queue.compare_and_set_value

    def record(key: str, expected: str | None, value: str) -> bool:
        stored.append(json.loads(value)["offset"])
        return compare_and_set(key, expected, value)

    monkeypatch.setattr(real_queue, "enqueue_many", refuse_batches)
    monkeypatch.setattr(real_queue, "compare_and_set_value", record)
    publisher = Publisher(real_queue, PublishOptions(queue="in"))
    publisher.publish_file(source)
    assert payloads(real_queue) == ["line 1", "line 2", "line 4"]
    assert stored == [7, 14, 28, 28]  # line 1, line 2, line 4, then the batch's end
    assert publisher.skipped == 1
