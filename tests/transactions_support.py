"""The application's side of ``connection=`` tests: its own connection to the queue's database
(``sqlite3`` or psycopg 3, in autocommit mode with explicit ``BEGIN``/``COMMIT``, so one test
reads the same on both backends) and its own tables, ``orders`` and ``effects``."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

APP_TABLES = ("orders", "effects")


class App:
    """An application's connection to the queue's database (see the module docstring)."""

    def __init__(self, db: Path | str) -> None:
        self.sqlite = not str(db).startswith("postgresql://")
        self.conn: Any
        if self.sqlite:
            self.conn = sqlite3.connect(db, isolation_level=None, timeout=60)
        else:
            import psycopg

            self.conn = psycopg.connect(str(db), autocommit=True)
        self.mark = "?" if self.sqlite else "%s"
        for table in APP_TABLES:
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id BIGINT NOT NULL)")

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE" if self.sqlite else "BEGIN")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        if self.sqlite:
            return bool(self.conn.in_transaction)
        from psycopg.pq import TransactionStatus

        return bool(self.conn.info.transaction_status == TransactionStatus.INTRANS)

    def insert(self, table: str, value: int) -> None:
        self.conn.execute(f"INSERT INTO {table} (id) VALUES ({self.mark})",  # noqa: S608
                          (value,))

    def rows(self, table: str) -> list[int]:
        """The committed ids of ``table`` (read outside any transaction of this connection)."""
        assert not self.in_transaction
        cursor = self.conn.execute(f"SELECT id FROM {table} ORDER BY id")  # noqa: S608
        return [row[0] for row in cursor.fetchall()]

    def close(self) -> None:
        """Drop the tables (a PostgreSQL test database goes back to the pool as it came)."""
        if self.sqlite:
            if self.conn.in_transaction:
                self.rollback()
        elif self.conn.info.transaction_status != 0:  # not IDLE: in a (failed) transaction
            self.rollback()
        for table in APP_TABLES:
            self.conn.execute(f"DROP TABLE IF EXISTS {table}")
        self.conn.close()
