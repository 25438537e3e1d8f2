"""Stop supervisord and wait until it has exited: what ``make stop`` runs.

    python scripts/stop_supervisord.py [-c supervisor/supervisord.conf] [--timeout 300]

``supervisorctl shutdown`` returns as soon as supervisord has *accepted* the request, while
the consumers may still be finishing their jobs (up to their ``stopwaitsecs``); a ``make run``
started then finds the control socket taken. This script asks for the shutdown the same way
(over the socket), then waits until supervisord's process is gone, so when it returns every
process has ended and supervisord can be started again at once. It works for supervisord in
the foreground (``make run``) and in the background (``supervisord -c ...``), and sends
SIGTERM (supervisord's own clean shutdown) when the socket does not answer but the pidfile
names a live supervisord.

Exit codes: 0 stopped, or nothing was running (said so); 1 still running at the deadline.
"""

from __future__ import annotations

import argparse
import configparser
import os
import signal
import sys
import time
import xmlrpc.client
from pathlib import Path

from supervisor.options import ClientOptions
from supervisor.xmlrpc import Faults


def pidfile_of(config: Path) -> Path:
    """The ``[supervisord] pidfile`` of ``config`` (supervisor's default when unset)."""
    parser = configparser.RawConfigParser()
    parser.read(config)
    raw = parser.get("supervisord", "pidfile", fallback="supervisord.pid")
    expansions = {"here": str(config.parent.resolve()),
                  **{f"ENV_{name}": value for name, value in os.environ.items()}}
    path = Path(raw % expansions)
    return path if path.is_absolute() else config.parent / path


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie has exited: it only waits to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): kill(0) is all we know
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def is_supervisord(pid: int) -> bool:
    """Whether ``pid`` runs supervisord (a stale pidfile may name a reused pid)."""
    try:
        return b"supervisord" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists() and alive(pid)
    except OSError:
        return False


def request_shutdown(config: Path) -> tuple[bool, int | None]:
    """Ask supervisord over its socket to shut down: (answered, its pid if it said)."""
    options = ClientOptions()
    options.realize(["-c", str(config)])
    server = options.getServerProxy().supervisor
    try:
        pid = int(server.getPID())
        server.shutdown()
    except xmlrpc.client.Fault as fault:
        if fault.faultCode == Faults.SHUTDOWN_STATE:
            return True, None  # already shutting down
        raise
    except OSError:
        return False, None  # no socket, or nobody listening on it
    return True, pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", type=Path, default=Path("supervisor/supervisord.conf"))
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for every process to end (default 300)")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        parser.error(f"no such config file: {args.config}")
    pidfile = pidfile_of(args.config)
    from_file = read_pid(pidfile)
    answered, pid = request_shutdown(args.config)
    pid = pid or from_file
    if not answered:
        if from_file is None or not alive(from_file) or not is_supervisord(from_file):
            stale = f" (the pidfile {pidfile} is stale)" if from_file is not None else ""
            print(f"supervisord is not running: nothing to stop{stale}")
            return 0
        os.kill(from_file, signal.SIGTERM)  # supervisord shuts down cleanly on SIGTERM
    if pid is None:
        print("supervisord is shutting down; its pid is unknown (no pidfile), not waiting")
        return 0
    print(f"stopping supervisord (pid {pid}): each process gets its stopwaitsecs to finish...",
          flush=True)
    deadline = time.monotonic() + args.timeout
    while alive(pid):
        if time.monotonic() > deadline:
            print(f"supervisord (pid {pid}) is still running after {args.timeout:g} s; "
                  "see logs/supervisord.log", file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(f"supervisord (pid {pid}) has exited: every process has ended")
    return 0


if __name__ == "__main__":
    sys.exit(main())
