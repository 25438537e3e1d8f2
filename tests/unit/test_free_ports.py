"""The ports the tests give their servers (tests/support.py ``free_ports``) cannot collide."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.support import ROOT, _ephemeral_range, free_ports


def test_ports_are_distinct_free_and_outside_the_ephemeral_range() -> None:
    low, high = _ephemeral_range()
    ports = free_ports(3) + [p for _ in range(3) for p in free_ports(1)]
    assert len(set(ports)) == len(ports) == 6  # never the same port twice, in one call or many
    for port in ports:
        assert not low <= port <= high  # no outgoing connection can be given it
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # nothing holds it: a server can bind it


def test_another_process_is_never_given_a_port_this_one_holds() -> None:
    held = free_ports(2)
    # The other process looks at this one's ports first, then at ports of its own.
    child = (
        "import random, sys\n"
        "import tests.support as support\n"
        "held = [int(p) for p in sys.argv[1:]]\n"
        "spare = [p for p in support._port_candidates() if p not in held]\n"
        "support._port_candidates = lambda: [*held, *spare[:10]]\n"
        "random.randrange = lambda n: 0\n"
        "print(' '.join(str(p) for p in support.free_ports(3)))\n"
    )
    out = subprocess.run([sys.executable, "-c", child, *map(str, held)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    given = [int(p) for p in out.split()]
    assert len(given) == 3 and not set(given) & set(held), (given, held)
