"""A Jepsen-style queue checker: what was enqueued, what consumers saw, what the database holds.

Given the ids that producers were told were stored, the ack records that every consumer process
wrote (one per completed delivery) and the final rows of the database, :func:`check` counts

* ``lost``: enqueued ids that are neither done, dead-lettered nor still pending;
* ``unexpected``: ids delivered or stored that no producer enqueued;
* ``duplicates``: ids stored more than once, or done rows whose ``attempts`` say acked twice
  (a job row is acked at most once by construction; the count guards the invariant);
* ``extra_deliveries``: completed deliveries beyond one per job (at-least-once redeliveries);
* ``overlapping_leases``: two deliveries of one job under different lease tokens whose live
  lease intervals overlap (two consumers holding the same job at once).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from persistent_queue import Job, Queue


@dataclass(frozen=True, slots=True)
class AckRecord:
    """One completed delivery: which job, under which lease, claimed and finished when."""

    job_id: int
    lease_token: str
    claimed_at: float
    lease_expires_at: float
    finished_at: float
    pid: int


@dataclass(frozen=True, slots=True)
class FinalRow:
    """One job as the database holds it at the end."""

    job_id: int
    state: str
    attempts: int


@dataclass
class Verdict:
    """What :func:`check` found."""

    enqueued: int
    done: int
    dead: int
    pending: int
    lost: list[int] = field(default_factory=list)
    unexpected: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    extra_deliveries: int = 0
    overlapping_leases: list[int] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """No loss, nothing unexpected, no duplicate rows, never two live leases at once."""
        return not (self.lost or self.unexpected or self.duplicates or self.overlapping_leases)

    def summary(self) -> dict[str, int]:
        return {"enqueued": self.enqueued, "done": self.done, "dead": self.dead,
                "pending": self.pending, "lost": len(self.lost),
                "unexpected": len(self.unexpected), "duplicates": len(self.duplicates),
                "extra_deliveries": self.extra_deliveries,
                "overlapping_leases": len(self.overlapping_leases)}


def write_record(folder: Path, record: AckRecord) -> None:
    """Append ``record`` to this process's file in ``folder`` (one JSON line, O_APPEND)."""
    line = json.dumps([record.job_id, record.lease_token, record.claimed_at,
                       record.lease_expires_at, record.finished_at, record.pid]) + "\n"
    with open(folder / f"acks-{record.pid}.jsonl", "a", encoding="utf-8") as handle:
        handle.write(line)


def read_records(folder: Path) -> list[AckRecord]:
    """Every record of every process; a line torn by SIGKILL (no newline) is skipped."""
    records = []
    for path in sorted(folder.glob("acks-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            if line.endswith("\n"):
                records.append(AckRecord(*json.loads(line)))
    return records


def _overlaps(records: list[AckRecord]) -> bool:
    """True if two deliveries under different leases were live at the same moment."""
    spans = sorted((r.claimed_at, min(r.finished_at, r.lease_expires_at), r.lease_token)
                   for r in records)
    latest_end, latest_token = spans[0][1], spans[0][2]
    for start, end, token in spans[1:]:
        if token != latest_token and start < latest_end:
            return True
        if end > latest_end:
            latest_end, latest_token = end, token
    return False


def check(enqueued: Iterable[int], records: Iterable[AckRecord],
          final: Iterable[FinalRow]) -> Verdict:
    """Compare producers' view, consumers' view and the database (see the module doc)."""
    wanted = set(enqueued)
    rows = list(final)
    stored = Counter(row.job_id for row in rows)
    states = {row.job_id: row for row in rows}
    done = {i for i, row in states.items() if row.state == "done"}
    dead = {i for i, row in states.items() if row.state == "dead"}
    pending = set(states) - done - dead
    per_job: dict[int, list[AckRecord]] = defaultdict(list)
    for record in records:
        per_job[record.job_id].append(record)
    seen = set(per_job) | set(states)
    return Verdict(
        enqueued=len(wanted), done=len(done), dead=len(dead), pending=len(pending),
        lost=sorted(wanted - done - dead - pending),
        unexpected=sorted(seen - wanted),
        duplicates=sorted(i for i, n in stored.items() if n > 1),
        extra_deliveries=sum(len(r) - 1 for r in per_job.values() if r),
        overlapping_leases=sorted(i for i, r in per_job.items() if len(r) > 1 and _overlaps(r)),
    )


def all_jobs(queue: Queue, name: str) -> list[Job]:
    """Every job row of queue ``name``, oldest first, read page by page."""
    jobs: list[Job] = []
    while True:
        page = queue.list_jobs(name, limit=5000, offset=len(jobs), newest_first=False)
        jobs += page
        if len(page) < 5000:
            return jobs


def final_rows(queue: Queue, name: str) -> list[FinalRow]:
    """The final rows of queue ``name``: its jobs plus its dead letters (state ``dead``)."""
    rows = [FinalRow(j.id, j.state.value, j.attempts) for j in all_jobs(queue, name)]
    rows += [FinalRow(d.id, "dead", d.attempts)
             for d in queue.dead_letters(name, limit=10_000)]
    return rows


def integrity_check(db: Path | str) -> str:
    """SQLite's full ``PRAGMA integrity_check`` on the file, read on a fresh connection; on
    PostgreSQL the backend's consistency check ("ok" when it finds nothing)."""
    import sqlite3

    if "://" in str(db):
        from persistent_queue import Queue

        with Queue(db) as q:
            found = q.check_integrity()
        return "ok" if not found else "; ".join(found)

    conn = sqlite3.connect(db)
    try:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()
