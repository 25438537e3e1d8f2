"""A local PostgreSQL cluster for tests, benchmarks and trying the system on PostgreSQL.

    python scripts/pg_cluster.py start [--dir data/pg] [--port N] [--database queue] [--fresh]
    python scripts/pg_cluster.py url   [--dir data/pg] [--database queue]
    python scripts/pg_cluster.py stop  [--dir data/pg] [--remove]

``start`` creates the cluster on first use (``initdb``), starts the server on 127.0.0.1 and a
unix socket inside the directory, creates the database (``--fresh``: drops it first) and
prints its URL; ``url`` prints it
again; ``stop`` stops the server (``--remove`` also deletes the directory).

From Python, a throw-away cluster in its own temporary directory, removed on exit (also on
Ctrl-C and at interpreter exit)::

    with throwaway_cluster() as cluster:
        name = cluster.create_database()
        Queue(cluster.url(name))

The PostgreSQL programs are looked up in ``pg_config --bindir``, ``/usr/lib/postgresql/*/bin``
and ``PATH``. Run as root, ``initdb`` and the server run as the ``postgres`` user. The settings
trade durability for speed (``fsync=off``): a cluster for tests and demos, not for data you keep.
Local connections are trusted without a password; the server listens on 127.0.0.1 only.

Exit codes: 0 done, 1 PostgreSQL is missing or failed to start, 2 bad arguments.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SUPERUSER = "postgres"
TEMP_PREFIX = "pq-pg-"
#: Server settings of every cluster started here (speed over durability).
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "30min",
}


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server programs are not installed, or the server failed to start."""


def find_bindir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    candidates: list[Path] = []
    env_dir = os.environ.get("PQ_PG_BINDIR")
    if env_dir:  # only there
        if all((Path(env_dir) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(env_dir)
        raise PostgresUnavailable(f"PQ_PG_BINDIR={env_dir} holds no initdb, pg_ctl and postgres")
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
            candidates.append(Path(out))
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted((Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
                         key=lambda p: _version_key(p.parent.name), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    raise PostgresUnavailable(
        "PostgreSQL server programs (initdb, pg_ctl, postgres) not found: looked in "
        "`pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH. Install them (Debian/Ubuntu: "
        "apt-get install postgresql) or set PQ_PG_BINDIR to their directory.")


def unavailable_reason() -> str | None:
    """Why a throw-away cluster cannot be used from Python here (no server programs, no
    psycopg), or None."""
    try:
        find_bindir()
    except PostgresUnavailable as exc:
        return str(exc)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    return None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class Cluster:
    """One PostgreSQL server: a data directory, a port on 127.0.0.1 and a unix socket."""

    def __init__(self, directory: Path, *, port: int | None = None,
                 bindir: Path | None = None) -> None:
        self.directory = Path(directory).resolve()
        self.bindir = bindir or find_bindir()
        self.port = port if port is not None else self._saved_port()
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._admin: Any = None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self.directory

    def url(self, dbname: str = "postgres", *, host: str = "127.0.0.1") -> str:
        """A URL for ``dbname`` over TCP (``host``, default 127.0.0.1)."""
        return f"postgresql://{SUPERUSER}@{host}:{self.port}/{dbname}"

    def socket_url(self, dbname: str = "postgres") -> str:
        """A URL for ``dbname`` over the unix socket."""
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.socket_dir}&port={self.port}"

    # -- lifecycle ---------------------------------------------------------------------------

    def _run(self, args: Sequence[str], *, timeout: float = 120.0) -> str:
        command = [str(a) for a in args]
        if _as_root():
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              cwd="/", check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"{Path(args[0]).name} failed (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]}")
        return done.stdout

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self) -> None:
        """Create the data directory (``initdb``), trusting local connections."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if _as_root():
            shutil.chown(self.directory, SUPERUSER, SUPERUSER)
            reachable = subprocess.run(["runuser", "-u", SUPERUSER, "--", "test", "-w",
                                        str(self.directory)], check=False, timeout=30)
            if reachable.returncode != 0:
                raise PostgresUnavailable(
                    f"the {SUPERUSER} user, which runs the server, cannot reach "
                    f"{self.directory}: pick a directory whose parents it may enter")
        self._run([self.bindir / "initdb", "-D", self.data_dir, "-U", SUPERUSER,
                   "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])

    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").is_file() and self._status_ok()

    def _status_ok(self) -> bool:
        command = [str(self.bindir / "pg_ctl"), "status", "-D", str(self.data_dir)]
        if _as_root():
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        return subprocess.run(command, capture_output=True, timeout=30,
                              check=False).returncode == 0

    def start(self, *, listen: Sequence[str] = ("127.0.0.1",),
              settings: dict[str, str] | None = None) -> None:
        """Start the server (``initdb`` first if needed); waits until it accepts connections."""
        if not self.initialised():
            self.init()
        if self.port is None:
            self.port = free_port()
        options = {**FAST_SETTINGS, **(settings or {}), "port": str(self.port),
                   "listen_addresses": ",".join(listen),
                   "unix_socket_directories": str(self.socket_dir)}
        opts = " ".join(f"-c {key}={value}" for key, value in options.items())
        self._run([self.bindir / "pg_ctl", "-D", self.data_dir, "-l",
                   self.directory / "server.log", "-w", "-t", "60", "-o", opts, "start"])
        (self.directory / "port").write_text(f"{self.port}\n")

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server if it runs (``mode``: smart, fast or immediate)."""
        self.close_connection()
        if (self.data_dir / "postmaster.pid").is_file():
            try:
                self._run([self.bindir / "pg_ctl", "-D", self.data_dir, "-m", mode, "-w",
                           "-t", "60", "stop"])
            except PostgresUnavailable:
                if self._status_ok():
                    raise

    def remove(self) -> None:
        """Stop the server at once and delete its directory."""
        self.stop(mode="immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def add_hba(self, line: str) -> None:
        """Append a ``pg_hba.conf`` line (e.g. trust a private test network) and reload."""
        with open(self.data_dir / "pg_hba.conf", "a", encoding="utf-8") as hba:
            hba.write(line.rstrip() + "\n")
        if self.running():
            self._run([self.bindir / "pg_ctl", "-D", self.data_dir, "reload"])

    def _saved_port(self) -> int | None:
        try:
            return int((self.directory / "port").read_text().strip())
        except (OSError, ValueError):
            return None

    # -- databases ---------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run one maintenance statement (outside a transaction) as the superuser, on the
        ``postgres`` database over one kept-open connection."""
        import psycopg

        with self._lock:
            if self._admin is None or self._admin.closed:
                self._admin = psycopg.connect(self.url(), autocommit=True, connect_timeout=30)
            try:
                self._admin.execute(sql, params)
            except psycopg.OperationalError:
                self._admin.close()
                raise

    def close_connection(self) -> None:
        """Close the maintenance connection (before the server stops)."""
        with self._lock:
            if self._admin is not None:
                self._admin.close()
                self._admin = None

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """Create a database (a fresh name unless given), optionally as a copy of ``template``;
        returns its name."""
        if name is None:
            name = f"t_{os.getpid()}_{next(self._counter)}"
        _check_identifier(name)
        sql = f'CREATE DATABASE "{name}"'
        if template:
            _check_identifier(template)
            sql += f' TEMPLATE "{template}"'
        for attempt in range(50):
            try:
                self.execute(sql)
                return name
            except Exception as exc:  # the template may be busy for a moment
                if "is being accessed by other users" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1)
        return name

    def end_sessions(self, name: str) -> None:
        """Disconnect every session on database ``name``."""
        self.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE datname = %s AND pid <> pg_backend_pid()", (name,))

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever still uses it."""
        _check_identifier(name)
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _check_identifier(name: str) -> None:
    if not name or not all(ch.isalnum() or ch == "_" for ch in name) or len(name) > 63:
        raise ValueError(f"not a plain database name: {name!r}")


def _remove_stale_clusters() -> None:
    """Remove throw-away clusters whose owning process died without cleaning up (kill -9)."""
    for path in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        try:
            owner = int((path / "owner.pid").read_text().strip())
            os.kill(owner, 0)
        except ProcessLookupError:
            try:
                Cluster(path).remove()
            except PostgresUnavailable:
                pass
        except (OSError, ValueError):
            continue


@contextmanager
def throwaway_cluster(*, listen: Sequence[str] = ("127.0.0.1",),
                      settings: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A new cluster in its own temporary directory, stopped and removed afterwards."""
    bindir = find_bindir()
    _remove_stale_clusters()
    directory = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    directory.chmod(0o755)
    (directory / "owner.pid").write_text(f"{os.getpid()}\n")
    cluster = Cluster(directory, bindir=bindir)
    removed = False

    def remove() -> None:
        nonlocal removed
        if not removed:
            removed = True
            cluster.remove()

    atexit.register(remove)
    try:
        for attempt in range(3):  # a free port may be taken before the server binds it
            try:
                cluster.start(listen=listen, settings=settings)
                break
            except PostgresUnavailable:
                if attempt == 2:
                    raise
                cluster.port = None
        yield cluster
    finally:
        remove()
        atexit.unregister(remove)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "url", "status"])
    parser.add_argument("--dir", default="data/pg", help="cluster directory (default data/pg)")
    parser.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: a free one, "
                        "remembered in the directory)")
    parser.add_argument("--database", default="queue", help="database to create and print")
    parser.add_argument("--fresh", action="store_true",
                        help="start: drop the database first (an empty one for a drill)")
    parser.add_argument("--remove", action="store_true", help="stop: delete the directory too")
    args = parser.parse_args(argv)
    try:
        cluster = Cluster(Path(args.dir))
        if args.port is not None:
            cluster.port = args.port
        if args.action == "start":
            if not cluster.running():
                cluster.start()
            if args.fresh:
                cluster.drop_database(args.database)
            try:
                cluster.create_database(args.database)
            except Exception as exc:
                if "already exists" not in str(exc):
                    raise
            print(cluster.url(args.database))
        elif args.action == "url":
            if cluster.port is None:
                print(f"no cluster in {args.dir}: run `start` first", file=sys.stderr)
                return 1
            print(cluster.url(args.database))
        elif args.action == "status":
            state = "running" if cluster.running() else "stopped"
            print(f"{state}: {cluster.url(args.database) if cluster.port else args.dir}")
            return 0 if state == "running" else 1
        else:
            cluster.stop()
            if args.remove:
                shutil.rmtree(cluster.directory, ignore_errors=True)
    except PostgresUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # readable message instead of a traceback
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
