"""An ack that PostgreSQL rolls back to break a deadlock is run again, not failed.

An ack releases the dependents of each job it finishes, locking them one parent at a time.
Here another session holds one dependent and then asks for the other, after the ack has
locked that one and is waiting for the first: a deadlock. The ack has waited longer, so its
backend detects it and the server rolls the ack back; the ack is then run again and succeeds
once the other session lets go.
"""

from __future__ import annotations

import psycopg

from persistent_queue import JobState, Queue
from tests.postgres_support import lock_waits
from tests.support import in_thread, wait_for


def test_a_batch_ack_rolled_back_by_a_deadlock_runs_again(pg_url: str) -> None:
    with Queue(pg_url, durability="normal") as q:
        first_parent, second_parent = q.enqueue("work", 1), q.enqueue("work", 2)
        # The second parent's dependent has the lower id: the ack locks the first parent's
        # dependent (the higher id) before the second's.
        low = q.enqueue("next", "low", depends_on=[second_parent])
        high = q.enqueue("next", "high", depends_on=[first_parent])
        claimed = q.dequeue_many("work", 2)
        assert sorted(job.id for job in claimed) == [first_parent.id, second_parent.id]

        other = psycopg.connect(pg_url)
        try:
            other.execute("SET deadlock_timeout = '60s'")  # the ack's backend detects it
            other.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (low.id,))
            ack, acked = in_thread(lambda: q.ack_many(claimed))
            wait_for(lambda: lock_waits(pg_url) >= 1, message="the ack to wait for `low`")
            grab, grabbed = in_thread(lambda: other.execute(
                "SELECT id FROM jobs WHERE id = %s FOR UPDATE", (high.id,)).fetchone())
            # The server breaks the deadlock by rolling the ack back; `other` gets `high`.
            grab.join(60)
            assert not grab.is_alive() and "error" not in grabbed, grabbed
            assert ack.is_alive()  # run again, now waiting for `other` to let go
            other.rollback()
        finally:
            other.close()
        ack.join(60)
        assert not ack.is_alive()
        assert "error" not in acked, acked
        assert q.get_job(first_parent.id).state is JobState.DONE
        assert q.get_job(second_parent.id).state is JobState.DONE
        assert q.get_job(low.id).state is JobState.READY
        assert q.get_job(high.id).state is JobState.READY
