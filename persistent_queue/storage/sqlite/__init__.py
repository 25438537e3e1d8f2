"""The SQLite dialect: connections, group commit, the disk reserve, checkpoints and its SQL."""

from __future__ import annotations

import os

from ...config import Durability
from ..core import SQLBackend
from .dialect import SQLiteDialect


class SQLiteBackend(SQLBackend):
    """Every queue in one SQLite database file: the shared core on :class:`SQLiteDialect`.

    On a full disk (:mod:`.disk_reserve`) the writes that add jobs are refused while the disk
    reserve is released, and the writes that settle jobs make room and go on.
    """

    dialect: SQLiteDialect

    def __init__(self, path: str | os.PathLike[str], *, durability: Durability = "full",
                 busy_timeout: float = 60.0) -> None:
        super().__init__(SQLiteDialect(path, durability=durability, busy_timeout=busy_timeout))


__all__ = ["SQLiteBackend", "SQLiteDialect"]
