"""Database health for operators and probes: file sizes, free disk, engine settings.

>>> from persistent_queue import Queue
>>> from persistent_queue.health import database_health
>>> report = database_health(Queue("data/queue.db"))
>>> report.ok, report.file_bytes, report.sqlite_version

Cheap by default (a few pragmas and ``stat`` calls); ``integrity=True`` adds SQLite's full
``integrity_check``, which reads every page (seconds on a large file).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .queue import Queue

_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
_AUTO_VACUUM = {0: "NONE", 1: "FULL", 2: "INCREMENTAL"}


@dataclass(frozen=True, slots=True)
class DatabaseHealth:
    """One reading of the database's health.

    ``integrity`` is None unless the check was asked for; then ``"ok"`` or SQLite's report.
    ``free_disk_bytes``/``total_disk_bytes`` describe the file system holding the database.
    """

    path: str
    file_bytes: int
    wal_bytes: int
    free_disk_bytes: int
    total_disk_bytes: int
    sqlite_version: str
    schema_version: int
    journal_mode: str
    synchronous: str
    auto_vacuum: str
    page_size: int
    page_count: int
    freelist_count: int
    busy_timeout_ms: int
    integrity: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """False when the integrity check (if run) found problems or WAL is not in use."""
        return self.integrity in (None, "ok") and self.journal_mode.lower() == "wal"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with ``ok`` included."""
        data = dataclasses.asdict(self)
        data["ok"] = self.ok
        return data


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def database_health(queue: Queue, *, integrity: bool = False) -> DatabaseHealth:
    """Measure the health of ``queue``'s database (see :class:`DatabaseHealth`).

    Raises ``StorageError`` if the database cannot be read.
    """
    facts = queue.backend.database_facts(integrity=integrity)
    path = Path(str(facts.get("path", os.fspath(queue.db))))
    folder = path.parent if path.parent.exists() else Path(".")
    disk = shutil.disk_usage(folder)
    synchronous = facts.get("synchronous")
    auto_vacuum = facts.get("auto_vacuum")
    return DatabaseHealth(
        path=str(path),
        file_bytes=_size(path),
        wal_bytes=_size(path.with_name(path.name + "-wal")),
        free_disk_bytes=disk.free,
        total_disk_bytes=disk.total,
        sqlite_version=str(facts.get("sqlite_version", "")),
        schema_version=int(facts.get("user_version", queue.schema_version())),
        journal_mode=str(facts.get("journal_mode", "")),
        synchronous=_SYNCHRONOUS.get(synchronous, str(synchronous))
        if isinstance(synchronous, int) else str(synchronous),
        auto_vacuum=_AUTO_VACUUM.get(auto_vacuum, str(auto_vacuum))
        if isinstance(auto_vacuum, int) else str(auto_vacuum),
        page_size=int(facts.get("page_size", 0)),
        page_count=int(facts.get("page_count", 0)),
        freelist_count=int(facts.get("freelist_count", 0)),
        busy_timeout_ms=int(facts.get("busy_timeout_ms", 0)),
        integrity=facts.get("integrity"),
        settings={k: v for k, v in facts.items() if k not in ("path", "integrity")},
    )
