"""Check that the system's ports are free before ``make run`` starts it.

    python scripts/check_ports.py [VARIABLE ...]

Each VARIABLE (default: ``PQ_API_PORT PQ_OPS_PORT PQ_ADMIN_PORT``) names a port in the
environment, or its default (8000, 8501, 8502). A port some other process listens on on
127.0.0.1 would leave its program FATAL under supervisord; this says which port is busy and
how to pick another instead.

Exit codes: 0 every port is free, 1 one or more are busy, 2 a variable is not a port.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping, Sequence

#: Each port variable: its default and what listens on it.
PORTS = {
    "PQ_API_PORT": (8000, "the HTTP API"),
    "PQ_OPS_PORT": (8501, "the ops console"),
    "PQ_ADMIN_PORT": (8502, "the admin console"),
}


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind ``host:port`` now (as uvicorn and Streamlit do, with
    ``SO_REUSEADDR``: a port with connections only closing is free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def check(names: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """One message per problem: a value that is no port, a busy port, a port given twice."""
    problems: list[str] = []
    seen: dict[int, str] = {}
    for name in names:
        default, what = PORTS.get(name, (None, name))
        text = env.get(name) or ("" if default is None else str(default))
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            problems.append(f"{name}={text!r} is not a TCP port (1-65535)")
            continue
        port = int(text)
        if port in seen:
            problems.append(f"{name} and {seen[port]} are both {port}: give each its own port")
        elif not port_is_free(port):
            problems.append(f"port {port} ({name}, {what}) is in use: free it or pick another, "
                            f"e.g. make run {name}={port + 10}")
        seen[port] = name
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Print each problem on stderr; the exit code (see the module docstring)."""
    names = list(argv if argv is not None else sys.argv[1:]) or list(PORTS)
    problems = check(names, os.environ)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if any("is not a TCP port" in p for p in problems):
        return 2
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
