"""Health checks of a database: integrity, file sizes, free disk (``pq doctor``)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import sql
from .errors import StorageError
from .queue import Queue
from .sqlite_backend import SQLiteBackend

#: Free disk below this many bytes makes the report unhealthy.
MIN_FREE_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class HealthReport:
    """What ``doctor`` found; ``ok`` is False if anything needs an operator."""

    path: str
    schema_version: int
    integrity: list[str]
    journal_mode: str
    db_bytes: int
    wal_bytes: int
    free_pages: int
    disk_free_bytes: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with ``ok``."""
        return {**dataclasses.asdict(self), "ok": self.ok}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def check(q: Queue, *, quick: bool = False, min_free_bytes: int = MIN_FREE_BYTES) -> HealthReport:
    """Run ``PRAGMA integrity_check`` (or ``quick_check``) and measure the files and disk."""
    backend = q.backend
    if not isinstance(backend, SQLiteBackend):
        raise StorageError("doctor supports SQLite databases only")
    queries = sql.queries("sqlite")

    def one(name: str) -> Any:
        return backend.execute_read(queries[name])[0][0]

    integrity = [str(row[0]) for row in
                 backend.execute_read(queries["quick_check" if quick else "integrity_check"])]
    path = Path(backend.path)
    free_pages = int(one("freelist_count"))
    disk_free = shutil.disk_usage(path.parent if path.parent.exists() else os.getcwd()).free
    problems = []
    if integrity != ["ok"]:
        problems.append("integrity check failed: " + "; ".join(integrity[:5]))
    journal = str(one("journal_mode"))
    if journal.lower() != "wal":
        problems.append(f"journal mode is {journal}, not wal")
    if disk_free < min_free_bytes:
        problems.append(f"only {disk_free // (1024 * 1024)} MiB free on the database's disk")
    return HealthReport(path=str(path), schema_version=q.schema_version(), integrity=integrity,
                        journal_mode=journal, db_bytes=_size(path),
                        wal_bytes=_size(path.with_name(path.name + "-wal")),
                        free_pages=free_pages, disk_free_bytes=disk_free, problems=problems)
