"""Fresh PostgreSQL databases for the tests in this folder.

Uses the session's shared cluster (the ``pg_session`` fixture of tests/conftest.py) when there
is one, otherwise starts a throw-away cluster of its own for the module (``initdb`` in a
temporary directory, a free port on 127.0.0.1, trust auth, fsync off), stopped and removed
afterwards. Skips when no PostgreSQL programs are installed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BINDIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class Databases:
    """Creates and drops databases on one cluster."""

    def __init__(self, create: Callable[[], str], drop: Callable[[str], None],
                 url: Callable[[str], str]) -> None:
        self._create, self._drop, self._url = create, drop, url

    @contextlib.contextmanager
    def fresh(self) -> Iterator[str]:
        """The URL of a new database (migrated on first open), dropped afterwards."""
        name = self._create()
        try:
            yield self._url(name)
        finally:
            with contextlib.suppress(Exception):
                self._drop(name)


def _run(args: list[str]) -> None:
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    subprocess.run(args, check=True, capture_output=True, timeout=120, cwd="/")


@contextlib.contextmanager
def _own_cluster() -> Iterator[Databases]:
    import psycopg

    bindir = next((d for d in BINDIRS if (d / "initdb").exists()), None)
    if bindir is None:
        pytest.skip("no PostgreSQL programs installed (/usr/lib/postgresql/*/bin)")
    directory = Path(tempfile.mkdtemp(prefix="pq-wf-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    data = directory / "data"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = {"port": port, "listen_addresses": "127.0.0.1", "fsync": "off",
                "synchronous_commit": "off", "full_page_writes": "off",
                "max_connections": 300, "unix_socket_directories": directory}
    options = " ".join(f"-c {key}={value}" for key, value in settings.items())
    try:
        _run([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
              "--no-sync"])
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(directory / "log"), "-w",
              "-o", options, "start"])
        admin = psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres",
                                autocommit=True)
        counter = itertools.count(1)

        def create() -> str:
            name = f"wf_{os.getpid()}_{next(counter)}"
            admin.execute(f'CREATE DATABASE "{name}"')
            return name

        def drop(name: str) -> None:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        try:
            yield Databases(create, drop,
                            lambda name: f"postgresql://postgres@127.0.0.1:{port}/{name}")
        finally:
            admin.close()
    finally:
        with contextlib.suppress(Exception):
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def databases(request: pytest.FixtureRequest) -> Iterator[Databases]:
    """The shared session cluster if the suite has one, else a cluster of this module's own."""
    try:
        session = request.getfixturevalue("pg_session")
    except pytest.FixtureLookupError:
        with _own_cluster() as own:
            yield own
        return
    yield Databases(session.new_database, session.drop, session.url)
