"""Consumers on separate hosts share one PostgreSQL queue: every job done once, none lost.

Each consumer is a real ``consumer.py`` process in its own network namespace (its own network
stack, joined to the database host by a veth link), so it reaches PostgreSQL over TCP as a
consumer on another machine would. Where namespaces cannot be created (not root, no
iproute2), the same test runs with every consumer connecting over TCP to 127.0.0.1.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from persistent_queue import Queue
from tests.postgres.hosts import Host, namespaces_available, separate_hosts
from tests.postgres_support import pg_cluster, require_postgres, unavailable_reason
from tests.support import ROOT, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.e2e]

CONSUMERS = 3
QUEUE = "multi"


@dataclass
class Network:
    """The database and how each consumer host reaches it."""

    cluster: pg_cluster.Cluster
    database: str
    hosts: list[Host | None]  # None: a plain process on this machine, over 127.0.0.1

    def url_for(self, host: Host | None) -> str:
        return self.cluster.url(self.database,
                                host=host.server_address if host else "127.0.0.1")

    @property
    def url(self) -> str:
        return self.cluster.url(self.database)


@pytest.fixture(scope="module")
def lan() -> Iterator[tuple[pg_cluster.Cluster, list[Host | None]]]:
    """A server reachable from every consumer host (one for the module)."""
    reason = unavailable_reason()
    if reason is not None:
        if require_postgres():
            pytest.fail(f"PQ_REQUIRE_POSTGRES is set but PostgreSQL cannot run: {reason}")
        pytest.skip(f"PostgreSQL not available: {reason}")
    with contextlib_hosts() as hosts:
        listen = ["127.0.0.1", *(h.server_address for h in hosts if h is not None)]
        with pg_cluster.throwaway_cluster(listen=listen) as cluster:
            if any(hosts):
                cluster.add_hba("host all all 10.231.0.0/16 trust")
            yield cluster, hosts


@pytest.fixture
def network(lan: tuple[pg_cluster.Cluster, list[Host | None]]) -> Network:
    cluster, hosts = lan
    return Network(cluster, cluster.create_database(), hosts)


class contextlib_hosts:  # noqa: N801 (used like a function)
    """Namespaces when they work here, else local processes (TCP to 127.0.0.1)."""

    def __init__(self) -> None:
        self.reason = namespaces_available()
        self._inner = separate_hosts(CONSUMERS) if self.reason is None else None

    def __enter__(self) -> list[Host | None]:
        if self._inner is None:
            print(f"network namespaces unavailable ({self.reason}): consumers use TCP to "
                  "127.0.0.1")
            return [None] * CONSUMERS
        return list(self._inner.__enter__())

    def __exit__(self, *exc: object) -> None:
        if self._inner is not None:
            self._inner.__exit__(*exc)


class Consumers:
    """One ``consumer.py`` per host, restarted like supervisord would after a crash."""

    def __init__(self, network: Network, workdir: Path, env: dict[str, str]) -> None:
        self.network, self.workdir = network, workdir
        self.record = workdir / "completed.txt"
        self.env = {**env, "PQ_DRILL_RECORD": str(self.record)}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.kills = 0
        for index in range(len(network.hosts)):
            self.procs.append(self._start(index))

    def _start(self, index: int) -> subprocess.Popen[bytes]:
        host = self.network.hosts[index]
        argv = [sys.executable, str(ROOT / "consumer.py"), "--db", self.network.url_for(host),
                "--queue", QUEUE, "--handler", "persistent_queue.handlers:drill",
                "--concurrency", "4", "--wait", "0.5", "--durability", "normal",
                "--log-dir", str(self.workdir / f"logs-{index}"), "--log-format", "text"]
        log = open(self.workdir / f"consumer-{index}.log", "ab")  # noqa: SIM115
        try:
            return subprocess.Popen(host.command(argv) if host else argv, stdout=log,
                                    stderr=subprocess.STDOUT, env=self.env)
        finally:
            log.close()

    def kill_one(self, rng: random.Random) -> None:
        index = rng.randrange(len(self.procs))
        self.procs[index].send_signal(signal.SIGKILL)
        self.procs[index].wait(timeout=60)
        self.kills += 1
        self.procs[index] = self._start(index)

    def wait_ready(self, q: Queue) -> None:
        """Until every consumer has registered (its signal handlers are in place): a SIGTERM
        before that would kill it rather than stop it warmly."""
        def ready() -> bool:
            running = {w.pid for w in q.workers() if w.state == "running"}
            return all(p.pid in running for p in self.procs if p.poll() is None)

        wait_for(ready, timeout=120, message=f"consumers to register\n{self.logs()}")

    def stop(self) -> list[int | None]:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout=90))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        return codes

    def completions(self) -> Counter[int]:
        text = self.record.read_text() if self.record.exists() else ""
        return Counter(int(line) for line in text.split())

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:]
                         for p in sorted(self.workdir.glob("consumer-*.log")))


def _client_addresses(network: Network) -> set[str]:
    import psycopg

    with psycopg.connect(network.url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT DISTINCT host(client_addr) FROM pg_stat_activity"
            " WHERE datname = %s AND client_addr IS NOT NULL", (network.database,)).fetchall()
    return {row[0] for row in rows}


def _fill(network: Network, jobs: int, visibility_timeout: float) -> set[int]:
    with Queue(network.url, durability="normal") as q:
        q.create_queue(QUEUE, visibility_timeout=visibility_timeout, max_attempts=1000)
        return {job.id for start in range(0, jobs, 1000)
                for job in q.enqueue_many(QUEUE, [{"seconds": 0.002}] * min(1000, jobs - start))}


def test_consumers_on_separate_hosts_do_every_job_exactly_once(
    network: Network, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    ids = _fill(network, 3000, visibility_timeout=600)  # no lease may expire: exactly once
    consumers = Consumers(network, tmp_path, subprocess_env)
    with Queue(network.url) as q:
        try:
            wanted = {h.address for h in network.hosts if h is not None}
            if wanted:  # every host is connected, each from its own address
                wait_for(lambda: wanted <= _client_addresses(network), timeout=120,
                         message=f"connections from {sorted(wanted)}")
            wait_for(lambda: q.stats(QUEUE).done == len(ids), timeout=240,
                     message=f"3000 jobs done\n{consumers.logs()}")
            consumers.wait_ready(q)
        finally:
            codes = consumers.stop()
        assert codes == [0] * CONSUMERS, consumers.logs()
        runs = consumers.completions()
        assert set(runs) == ids, "a job was lost"
        assert max(runs.values()) == 1, "a job ran twice"
        jobs = q.list_jobs(QUEUE, limit=5000)
        assert {j.id for j in jobs} == ids and all(j.attempts == 1 for j in jobs)
        per_host = Counter(int(os.path.basename(p.parent.name).split("-")[1])
                           for p in tmp_path.glob("logs-*/processed_log.csv")
                           if p.stat().st_size > 0)
        assert len(per_host) == CONSUMERS, "every host took part"


def test_kill_minus_9_across_hosts_loses_nothing(
    network: Network, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    rng = random.Random(9)
    ids = _fill(network, 1500, visibility_timeout=2.0)
    consumers = Consumers(network, tmp_path, subprocess_env)
    with Queue(network.url) as q:
        try:
            for _ in range(6):  # kill a consumer mid-work every time a few more jobs are done
                done = q.stats(QUEUE).done
                wait_for(lambda d=done: q.stats(QUEUE).done >= min(d + 100, len(ids)),
                         timeout=120, message=f"progress\n{consumers.logs()}")
                consumers.kill_one(rng)
            wait_for(lambda: q.stats(QUEUE).done == len(ids), timeout=300,
                     message=f"1500 jobs done\n{consumers.logs()}")
            consumers.wait_ready(q)
        finally:
            codes = consumers.stop()
        assert codes == [0] * CONSUMERS, consumers.logs()
        runs = consumers.completions()
        assert set(runs) == ids, "a job was lost"
        repeats = sum(n - 1 for n in runs.values())
        assert repeats <= consumers.kills * 4, "only jobs in hand at a kill run again"
        stats = q.stats(QUEUE)
        assert (stats.done, stats.pending, stats.dead, stats.leased) == (len(ids), 0, 0, 0)
        assert q.check_integrity() == []
