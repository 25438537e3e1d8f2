"""Separate "hosts" for the multi-host tests: Linux network namespaces joined by veth pairs.

Each namespace has its own network stack (its own loopback, no route to the host's
127.0.0.1); a veth pair links it to the host, where the PostgreSQL server listens on the
host end's address. A process started with :meth:`Host.command` therefore reaches the database
only over a real TCP connection across an interface, as a consumer on another machine would.

Needs root and a working ``ip netns``; :func:`namespaces_available` says whether they work here.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                          check=check)


def namespaces_available() -> str | None:
    """None when network namespaces can be created here, else why not
    (``PQ_TEST_NETNS=0`` turns them off)."""
    if os.environ.get("PQ_TEST_NETNS") == "0":
        return "PQ_TEST_NETNS=0"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"pqprobe{os.getpid()}"
    done = _ip("netns", "add", probe, check=False)
    if done.returncode != 0:
        return f"`ip netns add` failed: {done.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass(frozen=True)
class Host:
    """One namespace: its name, its own address and the server's address as it sees it."""

    namespace: str
    address: str
    server_address: str

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]


@contextlib.contextmanager
def separate_hosts(count: int) -> Iterator[list[Host]]:
    """``count`` namespaces, each on its own /30 link to the host; removed afterwards."""
    tag = f"{os.getpid() % 10_000}{random.randrange(100):02d}"
    subnet = random.randrange(16, 250)  # 10.231.<subnet>.<4 * i + 1/2>
    hosts: list[Host] = []
    created: list[tuple[str, str]] = []
    try:
        for index in range(count):
            namespace, host_end, ns_end = f"pq{tag}n{index}", f"pq{tag}h{index}", f"pq{tag}c{index}"
            server_ip, client_ip = f"10.231.{subnet}.{4 * index + 1}", \
                f"10.231.{subnet}.{4 * index + 2}"
            _ip("netns", "add", namespace)
            created.append((namespace, host_end))
            _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            _ip("link", "set", ns_end, "netns", namespace)
            _ip("addr", "add", f"{server_ip}/30", "dev", host_end)
            _ip("link", "set", host_end, "up")
            _ip("-n", namespace, "addr", "add", f"{client_ip}/30", "dev", ns_end)
            _ip("-n", namespace, "link", "set", ns_end, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            hosts.append(Host(namespace, client_ip, server_ip))
        yield hosts
    finally:
        for namespace, host_end in created:
            _ip("link", "del", host_end, check=False)  # removes both ends of the pair
            _ip("netns", "del", namespace, check=False)
