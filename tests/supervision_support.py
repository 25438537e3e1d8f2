"""A real supervisord running ``sleep`` programs, for the tests of the Processes page and of
persistent_queue.supervision."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from persistent_queue import supervision
from persistent_queue.errors import SupervisorUnavailable
from tests.support import wait_for

#: What every test supervisord runs with: its socket, logs and plain RPC interface in its folder.
HEADER = """\
[unix_http_server]
file=%(here)s/s.sock

[supervisord]
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir=%(here)s

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
"""

#: A lone program ``sleeper`` and the group ``worker`` of two, each a ``sleep``.
CONFIG = HEADER + """

[program:sleeper]
command=sleep 600
startsecs=0
stopwaitsecs=5

[program:worker]
command=sleep 600
process_name=%(program_name)s_%(process_num)02d
numprocs=2
startsecs=0
stopwaitsecs=5
"""


@contextmanager
def running_supervisord() -> Iterator[str]:
    """Start supervisord on :data:`CONFIG`, wait until every program runs, yield its URL;
    stop it at the end."""
    daemon_bin = Path(sys.executable).parent / "supervisord"
    if not daemon_bin.exists():
        pytest.fail("supervisord is missing from the virtualenv (the supervisor extra)")
    # A short folder: a unix socket's path must fit in 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="pqsv"))
    (folder / "supervisord.conf").write_text(CONFIG)
    url = f"unix://{folder / 's.sock'}"
    daemon = subprocess.Popen([str(daemon_bin), "-n", "-c", str(folder / "supervisord.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def all_running() -> bool:
        try:
            return all(p.state == "RUNNING" for p in supervision.programs(url))
        except SupervisorUnavailable:
            assert daemon.poll() is None, (folder / "supervisord.log").read_text()
            return False

    try:
        wait_for(all_running, timeout=60, message="supervisord and its programs")
        yield url
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        shutil.rmtree(folder, ignore_errors=True)
