"""The brokers of the end-to-end benchmark, started by the bench itself on first use.

Redis is Debian's ``redis-server`` on a free port of 127.0.0.1 in a temporary directory, with
an append-only file synced every second (``--appendonly yes --appendfsync everysec``), no RDB
snapshots. PostgreSQL is a throw-away cluster (``scripts/pg_cluster.py``) with the durable
settings of ``bench/postgres.py`` (``fsync=on``). Both stop when the bench's stack closes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class Brokers:
    """The Redis server and PostgreSQL cluster the systems need, started on first use."""

    def __init__(self, stack: ExitStack, workdir: Path) -> None:
        self.stack, self.workdir = stack, workdir
        self.redis_url: str | None = None
        self.cluster: Any = None

    def unavailable(self, broker: str) -> str | None:
        if broker == "redis" and not shutil.which("redis-server"):
            return ("redis-server not found (Debian/Ubuntu: apt-get install -y redis-server; "
                    "elsewhere put redis-server on PATH)")
        if broker == "postgres":
            from . import postgres

            return postgres.unavailable_reason()
        return None

    def redis(self) -> str:
        if self.redis_url is None:
            self.redis_url = self.stack.enter_context(redis_server(self.workdir / "redis"))
        return self.redis_url

    def postgres(self, key: str) -> str:
        if self.cluster is None:
            from . import postgres

            sys.path.insert(0, str(ROOT / "scripts"))
            import pg_cluster

            self.cluster = self.stack.enter_context(
                pg_cluster.throwaway_cluster(settings=postgres.SETTINGS))
        name = "e2e_" + key.replace("-", "_")
        self.cluster.drop_database(name)
        self.cluster.create_database(name)
        return str(self.cluster.url(name))

    def fresh(self, key: str, broker: str, run: Path) -> dict[str, str]:
        """An empty store for system ``key`` (a SQLite file in ``run``, a flushed Redis, a
        new PostgreSQL database), as the environment its task app reads."""
        if broker == "sqlite":
            return {"BENCH_E2E_DB": str(run / "queue.db")}
        if broker == "redis":
            url = self.redis()
            subprocess.run(["redis-cli", "-u", url, "flushall"], check=True,
                           capture_output=True, timeout=60)
            return {"BENCH_E2E_REDIS": url}
        return {"BENCH_E2E_DB": self.postgres(key)}


@contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A ``redis-server`` on a free port, AOF with ``appendfsync everysec``; yields its URL."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import pg_cluster

    directory.mkdir(parents=True, exist_ok=True)
    port = pg_cluster.free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
        stdout=open(directory / "redis.log", "wb"), stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["redis-cli", "-u", url, "ping"], capture_output=True,
                             timeout=10).stdout.strip() != b"PONG":
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {directory / 'redis.log'}")
            time.sleep(0.05)  # polling for the server to accept connections
        print(f"Redis on 127.0.0.1:{port} (AOF, appendfsync everysec)", flush=True)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
