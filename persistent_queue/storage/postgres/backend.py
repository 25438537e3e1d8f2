"""PostgresBackend: the shared core on the PostgreSQL dialect."""

from __future__ import annotations

from ...config import Durability
from ..core import SQLBackend
from .dialect import PostgresDialect


class PostgresBackend(SQLBackend):
    """Every queue in one PostgreSQL database: the shared core on :class:`PostgresDialect`."""

    dialect: PostgresDialect

    def __init__(self, url: str, *, durability: Durability = "full",
                 busy_timeout: float = 60.0) -> None:
        super().__init__(PostgresDialect(url, durability=durability, busy_timeout=busy_timeout))


