"""Several producer.py processes on one file and one queue, as real processes.

An operator runs one by hand while the supervised one runs, or two are supervised: they share
the offset stored in the database, and each commit that publishes lines succeeds only if the
offset is still the one its producer last saw. The producers take turns on the file: every
line is published exactly once, in file order, also when one is killed with ``kill -9`` and
started again while the others run.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from persistent_queue import Queue
from persistent_queue.publisher import Publisher, PublishOptions
from tests.e2e.test_producer_hardening import lines, payloads, producer
from tests.support import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LINES = 5000


def start(db: Path | str, env: dict[str, str], source: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(producer(db, "--input", str(source), "--batch", "50"),
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def published_once_in_file_order(q: Queue, expected: list[str]) -> None:
    found = payloads(q)
    twice = {line: count for line, count in Counter(found).items() if count > 1}
    assert twice == {}, f"{len(found)} jobs for {len(expected)} lines"
    assert found == expected


def test_two_producers_on_one_file_publish_each_line_once(
        real_queue: Queue, db_path: Path, subprocess_env: dict[str, str],
        tmp_path: Path) -> None:
    source = tmp_path / "input.txt"
    source.write_text(lines("line", LINES))
    log = tmp_path / "producers.log"
    procs = [start(db_path, subprocess_env, source, log) for _ in range(2)]
    try:
        for proc in procs:
            assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
    published_once_in_file_order(real_queue, [f"line {n}" for n in range(1, LINES + 1)])


def test_producers_joining_and_killed_midway_publish_each_line_once(
        real_queue: Queue, db_path: Path, subprocess_env: dict[str, str],
        tmp_path: Path) -> None:
    source = tmp_path / "input.txt"
    source.write_text(lines("line", LINES))
    log = tmp_path / "producers.log"
    procs = [start(db_path, subprocess_env, source, log) for _ in range(2)]
    try:
        def published(at_least: int) -> bool:
            return (all(proc.poll() is not None for proc in procs)
                    or len(payloads(real_queue)) >= at_least)

        wait_for(lambda: published(1000), timeout=120, interval=0.005,
                 message="the producers to publish 1,000 lines")
        procs.append(start(db_path, subprocess_env, source, log))  # a third joins
        wait_for(lambda: published(2500), timeout=120, interval=0.005,
                 message="the producers to publish 2,500 lines")
        procs[0].kill()  # kill -9 mid-way, perhaps mid-commit; then started again
        procs[0].wait(timeout=60)
        procs[0] = start(db_path, subprocess_env, source, log)
        for proc in procs:
            assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
    published_once_in_file_order(real_queue, [f"line {n}" for n in range(1, LINES + 1)])


@pytest.mark.parametrize("other_publishes", [50, 200])
def test_a_producer_whose_offset_another_advanced_goes_on_from_there(
        db_path: Path | str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, other_publishes: int) -> None:
    """The interleaving made certain: after this producer read the offset, another one
    publishes a batch (or the whole file) before this one's first commit."""
    source = tmp_path / "input.txt"
    source.write_text(lines("line", 200))
    mine, theirs = Queue(db_path, durability="normal"), Queue(db_path, durability="normal")
    try:
        late = Publisher(mine, PublishOptions(queue="in", batch=50))
        other = Publisher(theirs, PublishOptions(queue="in", batch=other_publishes))
        monkeypatch.setattr(other, "_beat", lambda force=False: other.stop())  # one commit
        atomic = mine.atomic

        def other_commits_first() -> AbstractContextManager[None]:
            monkeypatch.setattr(mine, "atomic", atomic)
            other.publish_file(source)
            return atomic()

        monkeypatch.setattr(mine, "atomic", other_commits_first)
        late.publish_file(source)
        published_once_in_file_order(mine, [f"line {n}" for n in range(1, 201)])
        assert (other.published, late.published) == (other_publishes, 200 - other_publishes)
        assert late.offset_conflicts == 1
        assert caplog.text.count("another producer advanced the offset") == 1
    finally:
        mine.close()
        theirs.close()
