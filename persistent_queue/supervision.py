"""The processes supervisord runs, read and controlled through its XML-RPC interface.

One short-lived connection per call, on supervisord's unix socket (``PQ_SUPERVISOR_URL``, or
``supervisor/supervisord.sock`` under the working folder, which is the project's when
supervisord or ``make run`` started the caller). supervisor's own client transport is used;
supervisor is imported on first use (the ``supervisor`` extra).

A program is addressed as supervisorctl does: ``producer``, ``consumer:consumer_00``, or a
group as ``consumer:*``. A start of a running program, or a stop of a stopped one, is not an
error: the call ends with the program in the state asked for.
"""

from __future__ import annotations

import os
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import SupervisorRefused, SupervisorUnavailable

URL_ENV = "PQ_SUPERVISOR_URL"
#: How long a read waits for supervisord's answer (seconds).
READ_TIMEOUT = 10.0
#: How long a start, stop or restart waits: supervisord answers once the program runs or has
#: exited, which may take a program's ``stopwaitsecs`` (30 s for the consumers) and more.
ACTION_TIMEOUT = 300.0
#: supervisord's fault codes (``supervisor.xmlrpc.Faults``) that mean "already so".
_ALREADY_STARTED, _NOT_RUNNING, _SUCCESS = 60, 70, 80
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ProgramStatus:
    """One process supervisord runs.

    Attributes:
        name: The process's name (``consumer_00``).
        group: Its group (``consumer``; a lone program is its own group).
        state: supervisor's state name: RUNNING, STOPPED, STARTING, BACKOFF, EXITED, FATAL, ...
        pid: The process id while it runs, else 0.
        uptime: Seconds since it started while it runs, else None.
        exit_status: The exit status of its last run (0 before any).
        description: supervisor's one-line description (``pid 12, uptime 0:01:02``,
            ``Exited too quickly``, ...).
    """

    name: str
    group: str
    state: str
    pid: int
    uptime: float | None
    exit_status: int
    description: str

    @property
    def namespec(self) -> str:
        """The name supervisord's calls take: ``group:name``, or ``name`` for a lone program."""
        return self.name if self.name == self.group else f"{self.group}:{self.name}"

    @property
    def running(self) -> bool:
        """Whether the process runs (or is starting)."""
        return self.state in ("RUNNING", "STARTING")


def default_url() -> str:
    """``PQ_SUPERVISOR_URL``, or the socket ``supervisor/supervisord.sock`` of the project
    (the working folder)."""
    url = os.environ.get(URL_ENV, "").strip()
    if url:
        return url
    return f"unix://{Path.cwd() / 'supervisor' / 'supervisord.sock'}"


def _transport(url: str, timeout: float) -> Any:
    """supervisor's transport, its socket given ``timeout`` (it sets none: a supervisord
    that accepts and never answers would hold the caller for ever)."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, url)
    make = transport._get_connection

    def connection() -> Any:
        made = make()
        connect = made.connect

        def connect_with_timeout() -> None:
            connect()
            made.sock.settimeout(timeout)

        made.connect = connect_with_timeout
        return made

    transport._get_connection = connection
    return transport


def _call(url: str | None, call: Callable[[Any], T], timeout: float = READ_TIMEOUT) -> T:
    """Run ``call`` on supervisord's ``supervisor`` namespace; readable errors."""
    url = url or default_url()
    if not url.startswith(("unix://", "http://")):
        raise SupervisorUnavailable(f"{url!r} is not a supervisord URL (unix://PATH or "
                                    "http://HOST:PORT)")
    transport = _transport(url, timeout)
    proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport)
    try:
        return call(proxy.supervisor)
    except xmlrpc.client.Fault as fault:
        raise SupervisorRefused(f"supervisord refused: {fault.faultString}") from None
    except TimeoutError:
        raise SupervisorUnavailable(
            f"supervisord at {url} did not answer within {timeout:g} s") from None
    except (OSError, xmlrpc.client.ProtocolError) as exc:
        raise SupervisorUnavailable(
            f"supervisord is not running or does not answer at {url} ({exc}); start the "
            "system with `make run` (or `supervisord -c supervisor/supervisord.conf`)"
        ) from None
    finally:
        transport.close()


def _status(info: dict[str, Any]) -> ProgramStatus:
    running = info["statename"] in ("RUNNING", "STARTING") and info["start"]
    return ProgramStatus(
        name=str(info["name"]), group=str(info["group"]), state=str(info["statename"]),
        pid=int(info["pid"]),
        uptime=float(info["now"] - info["start"]) if running else None,
        exit_status=int(info["exitstatus"]), description=str(info["description"]))


def programs(url: str | None = None, *, timeout: float = READ_TIMEOUT) -> list[ProgramStatus]:
    """Every process supervisord runs, in its order (by group, then name)."""
    return [_status(info) for info in _call(url, lambda s: s.getAllProcessInfo(), timeout)]


def _tolerant(url: str | None, method: str, name: str, ok_fault: int) -> None:
    def call(s: Any) -> None:
        try:
            result = getattr(s, method)(name, True)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != ok_fault:
                raise
            return
        # A group (``group:*``) answers one status per program instead of a fault.
        failed = [r for r in result if r["status"] not in (_SUCCESS, ok_fault)] if isinstance(
            result, list) else []
        if failed:
            raise SupervisorRefused("supervisord refused: " + "; ".join(
                f"{r['group']}:{r['name']}: {r['description']}" for r in failed))

    _call(url, call, ACTION_TIMEOUT)


def start(name: str, url: str | None = None) -> None:
    """Start a program (or ``group:*``) and wait until it runs; a running one is left be."""
    _tolerant(url, "startProcess", name, _ALREADY_STARTED)


def stop(name: str, url: str | None = None) -> None:
    """Stop a program (or ``group:*``) and wait until it has exited (supervisord's stop
    signal, then SIGKILL after its ``stopwaitsecs``); a stopped one is left be."""
    _tolerant(url, "stopProcess", name, _NOT_RUNNING)


def restart(name: str, url: str | None = None) -> None:
    """Stop then start a program (or ``group:*``), as ``supervisorctl restart`` does."""
    stop(name, url)
    start(name, url)
