"""``connection=`` with SQLAlchemy, on both backends: a ``Connection`` in a transaction and a
``Session`` (through their DBAPI connection: sqlite3, or psycopg 3 as ``postgresql+psycopg``),
an ORM model's row and the job committed together or rolled back together."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    scoped_session,
    sessionmaker,
)

from persistent_queue import JobState, NotInTransaction, Queue, WrongConnectionKind


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)


@pytest.fixture
def engine(db_path: Path | str, queue: Queue) -> Iterator[sa.Engine]:
    url = str(db_path)
    if url.startswith("postgresql://"):
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        url = f"sqlite:///{url}"
    engine = sa.create_engine(url)
    Base.metadata.create_all(engine)
    yield engine
    Base.metadata.drop_all(engine)  # a PostgreSQL test database goes back to the pool as it came
    engine.dispose()


def _orders(engine: sa.Engine) -> list[int]:
    with Session(engine) as session:
        return list(session.scalars(sa.select(Order.id).order_by(Order.id)))


def test_a_connection_commits_or_rolls_back_the_row_and_the_job(queue: Queue,
                                                                engine: sa.Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(sa.insert(Order).values(id=1))
        queue.enqueue("emails", {"order": 1}, connection=conn)
        raise RuntimeError("the request failed after the enqueue")
    assert queue.list_jobs("emails") == [] and _orders(engine) == []

    with engine.begin() as conn:
        # The job first: on SQLite the queue begins the driver's transaction (sqlite3 would
        # only at the first INSERT), and SQLAlchemy's commit ends it with the row.
        job = queue.enqueue("emails", {"order": 2}, connection=conn)
        conn.execute(sa.insert(Order).values(id=2))
    assert _orders(engine) == [2]
    assert [found.id for found in queue.list_jobs("emails")] == [job.id]


def test_a_session_commits_or_rolls_back_the_row_and_the_job(queue: Queue,
                                                             engine: sa.Engine) -> None:
    with Session(engine) as session:
        session.add(Order(id=1))
        queue.enqueue("emails", {"order": 1}, connection=session)
        session.rollback()
        session.add(Order(id=2))
        queue.enqueue("emails", {"order": 2}, connection=session)
        session.commit()
    assert _orders(engine) == [2]
    assert [job.payload for job in queue.list_jobs("emails")] == [{"order": 2}]

    claimed = queue.dequeue("emails")
    assert claimed is not None
    registry = scoped_session(sessionmaker(engine))
    try:
        registry.add(Order(id=3))
        queue.ack(claimed, connection=registry)  # a scoped_session: its thread's Session
        registry.commit()
    finally:
        registry.remove()
    assert queue.get_job(claimed.id).state is JobState.DONE and _orders(engine) == [2, 3]


def test_a_connection_outside_a_transaction_or_an_engine_is_refused(
        queue: Queue, engine: sa.Engine) -> None:
    with engine.connect() as conn:
        with pytest.raises(NotInTransaction, match="engine.begin"):
            queue.enqueue("emails", "x", connection=conn)
    with pytest.raises(WrongConnectionKind, match="Engine"):
        queue.enqueue("emails", "x", connection=engine)
    assert queue.list_jobs("emails") == []
