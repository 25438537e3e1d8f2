"""Control of single jobs, written once for every dialect: cancelling (and the worker's
confirmation), progress, deleting, retrying now, and dead letters (edit, redrive, purge).

:class:`JobControl` is the third layer of :class:`~.core.SQLBackend`, above
:class:`~.workflows.Workflows`; the lease transitions (:mod:`.core`) use its steps: why a fenced
operation lost its lease (``_diagnose_lease``) and cancelling a row (``_cancel_row``).

A cancel ends a job that is not running at once. A running job (a live lease) only records
the request: its worker sees it (``cancel_requests``, ``extend``, ``set_progress``), stops the
handler and confirms (``confirm_cancel``, fenced by the lease token); a lease that expires
after the request is cancelled by the reaper, never claimed again. Every operation reads the
job's row through a locking statement (``lock_job``, ``select_leased``: ``FOR UPDATE`` on
PostgreSQL; plain reads on SQLite, whose write transaction holds the database), so a cancel
and an ack of one lease are serialised: whichever commits first wins, the other sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import InvalidJobState, JobNotFound, LeaseLost
from ..models import DeadLetter, Job
from .base import RESULTS
from .rows import dead_letter_from_row, job_from_row
from .workflows import DEPENDENCY_CANCELLED, Workflows

DEPENDENCY_DELETED = "dependency deleted"


class JobControl(Workflows):
    """Cancel, progress, delete, retry now and dead letters (see the module docstring)."""

    # -- steps the lease transitions share --------------------------------------------------

    def _diagnose_lease(self, conn: Any, job_id: int, token: str, now: float,
                        action: str) -> Exception:
        """Why a fenced operation matched no row: the specific error to raise."""
        row = conn.execute(self.q["get_job"], {"id": job_id}).fetchone()
        if row is None:
            if conn.execute(self.q["get_dead_letter"], {"id": job_id}).fetchone() is not None:
                return LeaseLost(f"cannot {action} job {job_id}: it is in the dead-letter table")
            return JobNotFound(f"no job with id {job_id}")
        state = row["state"]
        if state != "leased":
            return LeaseLost(f"cannot {action} job {job_id}: it is {state}, not leased")
        if row["lease_token"] != token:
            return LeaseLost(
                f"cannot {action} job {job_id}: the lease token is stale "
                "(the lease expired and another consumer claimed the job)"
            )
        return LeaseLost(
            f"cannot {action} job {job_id}: its lease expired "
            f"{now - row['lease_expires_at']:.3f}s ago"
        )

    def _cancel_row(self, conn: Any, row: Any, *, reason: str | None, now: float,
                    running: bool, attempt_recorded: bool = False) -> Job:
        """Cancel the job of ``row`` (held by this transaction): its ``cancelled`` event
        (naming the worker and run time of the attempt it ends, if ``running`` and no event
        of this transaction recorded them already), and its waiting dependents dead-lettered
        ("dependency cancelled"). A job that was not running forgets its last start."""
        job_id, queue = row["id"], row["queue"]
        conn.execute(self.q["cancel_job"], {"id": job_id, "now": now, "reason": reason,
                                            "ran": int(running)})
        ends_attempt = running and not attempt_recorded
        started = row["started_at"] if ends_attempt else None
        self._event(conn, job_id, queue, "cancelled", row["attempts"],
                    row["cancel_reason"] or reason, now,
                    worker=row["claimed_by"] if ends_attempt else None,
                    run_time=None if started is None else now - started)
        self._end_dependents(conn, job_id, DEPENDENCY_CANCELLED,
                             f"job {job_id} it depends on was cancelled", now)
        self.dialect.notify(conn, RESULTS)  # a Queue.result waiting for it raises TaskFailed
        return job_from_row(conn.execute(self.q["get_job"], {"id": job_id}).fetchone())

    def _locked_job(self, conn: Any, job_id: int, if_dead: str) -> Any:
        """The job's row, locked; ``InvalidJobState(if_dead)`` for a dead letter."""
        row = conn.execute(self.q["lock_job"], {"id": job_id}).fetchone()
        if row is None:
            if conn.execute(self.q["get_dead_letter"], {"id": job_id}).fetchone() is not None:
                raise InvalidJobState(f"job {job_id} is dead-lettered: {if_dead}")
            raise JobNotFound(f"no job with id {job_id}")
        return row

    # -- cancellation -----------------------------------------------------------------------

    def cancel(self, job_id: int, *, reason: str | None, now: float) -> Job:
        return self.dialect.write(lambda: self._cancel_now(job_id, reason, now))

    def _cancel_now(self, job_id: int, reason: str | None, now: float) -> Job:
        with self.dialect.transaction() as conn:
            row = self._locked_job(conn, job_id, "purge it (purge_dead_letters) to be rid of "
                                                 "it, or redrive it to run it again")
            state = row["state"]
            if state in ("done", "cancelled"):
                raise InvalidJobState(f"job {job_id} is {state}: only an unfinished job can "
                                      "be cancelled")
            if state == "leased" and row["lease_expires_at"] > now:
                # Running: the worker stops it and confirms. Asking again changes nothing.
                params = {"id": job_id, "now": now, "reason": reason}
                if conn.execute(self.q["request_cancel"], params).rowcount:
                    self._event(conn, job_id, row["queue"], "cancel_requested",
                                row["attempts"], reason, now, worker=row["claimed_by"])
                return job_from_row(conn.execute(self.q["get_job"], {"id": job_id}).fetchone())
            # Waiting, ready (delayed or backing off too), or a lease that already expired
            # (its consumer's late ack is then fenced): cancelled now.
            return self._cancel_row(conn, row, reason=reason, now=now,
                                    running=state == "leased")

    def confirm_cancel(self, job_id: int, token: str, *, now: float) -> Job:
        return self.dialect.write(lambda: self._confirm_cancel_now(job_id, token, now))

    def _confirm_cancel_now(self, job_id: int, token: str, now: float) -> Job:
        with self.dialect.transaction() as conn:
            row = conn.execute(self.q["select_leased"],
                               {"id": job_id, "token": token, "now": now}).fetchone()
            if row is None:
                raise self._diagnose_lease(conn, job_id, token, now, "confirm the cancel of")
            if row["cancel_requested_at"] is None:
                raise InvalidJobState(f"job {job_id}: no cancellation was requested; ack, "
                                      "nack or requeue it instead")
            return self._cancel_row(conn, row, reason=None, now=now, running=True)

    def cancel_requests(self, job_ids: Sequence[int]) -> set[int]:
        with self.dialect.translate_errors():
            rows = self.dialect.conn().execute(
                self.q["cancel_requests"], {"ids": self.dialect.array(job_ids)}).fetchall()
        return {int(row["id"]) for row in rows}

    # -- progress ---------------------------------------------------------------------------

    def set_progress(self, job_id: int, token: str, *, fraction: float, message: str | None,
                     seconds: float | None, now: float) -> Job:
        return self.dialect.write(lambda: self._set_progress_now(
            job_id, token, fraction=fraction, message=message, seconds=seconds, now=now))

    def _set_progress_now(self, job_id: int, token: str, *, fraction: float,
                          message: str | None, seconds: float | None, now: float) -> Job:
        conn = self.dialect.conn()
        with self.dialect.translate_errors():
            row = conn.execute(self.q["set_progress"], {
                "id": job_id, "token": token, "now": now, "fraction": fraction,
                "message": message, "seconds": seconds}).fetchone()
            if row is None:
                raise self._diagnose_lease(conn, job_id, token, now, "set the progress of")
            return job_from_row(row, lease_token=True)

    # -- one job ----------------------------------------------------------------------------

    def delete_job(self, job_id: int, *, now: float) -> None:
        self.dialect.write(lambda: self._delete_job_now(job_id, now))

    def _delete_job_now(self, job_id: int, now: float) -> None:
        with self.dialect.transaction() as conn:
            row = self._locked_job(conn, job_id, "purge it (purge_dead_letters)")
            state = row["state"]
            if state == "leased":
                raise InvalidJobState(f"job {job_id} is leased by a consumer: cancel it first")
            for query in ("delete_job", "delete_job_events", "delete_job_edges"):
                conn.execute(self.q[query], {"id": job_id})
            if state in ("waiting", "ready"):  # unfinished: what waits for it never runs
                self._end_dependents(conn, job_id, DEPENDENCY_DELETED,
                                     f"job {job_id} it depends on was deleted", now)
            self.dialect.notify(conn, RESULTS)  # a Queue.result waiting for it: JobNotFound

    def retry_now(self, job_id: int, *, now: float) -> Job:
        return self.dialect.write(lambda: self._retry_now(job_id, now))

    def _retry_now(self, job_id: int, now: float) -> Job:
        with self.dialect.transaction() as conn:
            row = self._locked_job(conn, job_id, "redrive it to run it again")
            state = row["state"]
            if state != "ready":
                raise InvalidJobState(f"job {job_id} is {state}: only a ready job that is "
                                      "delayed or backing off can be retried now")
            if row["available_at"] <= now:
                raise InvalidJobState(f"job {job_id} is already claimable: it is neither "
                                      "delayed nor backing off")
            conn.execute(self.q["retry_now"], {"id": job_id, "now": now})
            self.dialect.notify(conn, row["queue"])
            return job_from_row(conn.execute(self.q["get_job"], {"id": job_id}).fetchone())

    # -- dead letters -----------------------------------------------------------------------

    def edit_dead_letter(self, job_id: int, changes: dict[str, Any]) -> DeadLetter:
        unknown = set(changes) - {"payload", "headers", "priority"}
        if unknown:  # pragma: no cover - guarded by Queue
            raise ValueError(f"cannot change {sorted(unknown)}")
        params = {"id": job_id, "payload": changes.get("payload"),
                  "headers": changes.get("headers"), "priority": changes.get("priority"),
                  **{f"set_{name}": int(name in changes)
                     for name in ("payload", "headers", "priority")}}
        with self.dialect.transaction() as conn:
            if conn.execute(self.q["lock_dead_letter"], {"id": job_id}).fetchone() is None:
                if conn.execute(self.q["get_job"], {"id": job_id}).fetchone() is not None:
                    raise InvalidJobState(f"job {job_id} is not dead-lettered; only a dead "
                                          "letter can be edited")
                raise JobNotFound(f"no dead-lettered job with id {job_id}")
            row = conn.execute(self.q["edit_dead_letter"], params).fetchone()
            return dead_letter_from_row(row)

    def redrive(self, job_id: int | None, queue: str | None, *, now: float,
                queue_defaults: tuple[int, float]) -> list[int]:
        q = self.q
        with self.dialect.transaction() as conn:
            if job_id is not None:
                row = conn.execute(q["lock_dead_letter"], {"id": job_id}).fetchone()
                if row is None:
                    if conn.execute(q["get_job"], {"id": job_id}).fetchone() is not None:
                        raise InvalidJobState(f"job {job_id} is not in the dead-letter table")
                    raise JobNotFound(f"no dead-lettered job with id {job_id}")
                targets = [(row["id"], row["queue"])]
            else:
                targets = [(r["id"], r["queue"]) for r in
                           conn.execute(q["dead_letter_ids_of_queue"], {"queue": queue})]
            for target_id, target_queue in targets:
                self._ensure_queue(conn, target_queue, queue_defaults, now)
                if conn.execute(q["redrive_one"], {"id": target_id, "now": now}).rowcount == 0:
                    continue  # already brought back, with a job it depends on
                conn.execute(q["delete_dead_letter"], {"id": target_id})
                self._event(conn, target_id, target_queue, "redriven", 0,
                            "moved back from the dead-letter table", now)
                self._after_redrive(conn, target_id, now)
            for name in sorted({name for _, name in targets}):
                self.dialect.notify(conn, name)
            return [target_id for target_id, _ in targets]

    def purge_dead_letters(self, queue: str | None, *, before: float) -> int:
        with self.dialect.transaction() as conn:
            if queue is None:
                return int(conn.execute(self.q["purge_all_dead_letters"],
                                        {"before": before}).rowcount)
            return int(conn.execute(self.q["purge_dead_letters"],
                                    {"queue": queue, "before": before}).rowcount)
