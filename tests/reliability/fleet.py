"""Real ``consumer.py`` processes, restarted when they die (as supervisord's autorestart)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

from persistent_queue import Queue
from tests.support import ROOT, wait_for

HANDLER = "tests.reliability.handlers:record"


class Fleet:
    """``count`` consumers of ``queue`` on ``db``, each writing ack records to ``acks``."""

    def __init__(self, db: Path | str, queue: str, workdir: Path, count: int,
                 env: dict[str, str], *, concurrency: int = 1) -> None:
        self.db, self.queue, self.workdir, self.concurrency = db, queue, workdir, concurrency
        self.acks = workdir / "acks"
        self.acks.mkdir(exist_ok=True)
        self.env = {**env, "PQ_ACK_DIR": str(self.acks)}
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.kills = 0
        self.self_kills = 0
        self.starts = 0

    def start(self, index: int) -> None:
        log = open(self.workdir / f"consumer-{index}.log", "ab")  # noqa: SIM115
        self.procs[index] = subprocess.Popen(
            [sys.executable, str(ROOT / "consumer.py"), "--db", str(self.db), "--queue",
             self.queue, "--handler", HANDLER, "--concurrency", str(self.concurrency),
             "--wait", "0.5", "--durability", "normal", "--log-dir",
             str(self.workdir / "logs"), "--log-format", "text", "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)
        log.close()
        self.starts += 1

    def restart_dead(self) -> None:
        """Start every consumer that is not running; count those that died by SIGKILL."""
        for index, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is None:
                continue
            if proc is not None and proc.returncode == -signal.SIGKILL:
                self.self_kills += 1
            self.start(index)

    def kill_one(self, rng: random.Random) -> None:
        """SIGKILL a random running consumer and restart it at once."""
        alive = [i for i, p in enumerate(self.procs) if p is not None and p.poll() is None]
        if not alive:
            return
        index = rng.choice(alive)
        proc = self.procs[index]
        assert proc is not None
        proc.kill()
        proc.wait()
        self.kills += 1
        self.start(index)

    def wait_ready(self, q: Queue, timeout: float = 120.0) -> None:
        """Wait until every live consumer has registered (its signal handlers are set)."""
        def ready() -> bool:
            running = {w.pid for w in q.workers() if w.state == "running"}
            return all(p.pid in running for p in self.procs if p is not None and p.poll() is None)
        wait_for(ready, timeout=timeout, interval=0.1, message="consumers registered")

    def stop(self) -> list[int]:
        """SIGTERM (warm stop) every consumer and return the exit codes."""
        alive = [p for p in self.procs if p is not None and p.poll() is None]
        for proc in alive:
            proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in alive:
            try:
                codes.append(proc.wait(timeout=120))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        return codes
