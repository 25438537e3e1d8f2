"""Ops console: what runs now: each running job, the worker holding it, for how long, and its
progress; with the workers, lost ones shown as lost. Re-read every two seconds."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from .. import config
from ..models import RunningJob, WorkerInfo
from .frames import duration, first_workers, timestamp
from .session import page_queue, read

REFRESH = 2.0
LIMIT = 200


def running_frame(jobs: Sequence[RunningJob], now: float) -> pd.DataFrame:
    """One row per running job, longest running first (as given)."""
    rows = [{"job": j.id, "queue": j.queue, "task": j.task or "", "worker": j.worker or "",
             "started": timestamp(j.started_at), "running for": duration(j.running_for),
             "progress": j.progress, "message": j.progress_message or "",
             "attempt": j.attempt, "lease ends in": duration(j.lease_expires_at - now),
             "cancelling": "yes" if j.cancel_requested else ""} for j in jobs]
    return pd.DataFrame(rows, columns=["job", "queue", "task", "worker", "started",
                                       "running for", "progress", "message", "attempt",
                                       "lease ends in", "cancelling"])


def busy_workers(workers: Sequence[WorkerInfo], jobs: Sequence[RunningJob],
                 now: float) -> pd.DataFrame:
    """The consumers and what each runs now (``lost``: its heartbeat stopped)."""
    running: dict[str, list[str]] = {}
    for job in jobs:
        if job.worker:
            running.setdefault(job.worker, []).append(str(job.id))
    rows = [{"worker": w.id, "state": w.state, "host": w.host, "pid": w.pid,
             "running": len(running.get(w.id, [])), "jobs": ", ".join(running.get(w.id, [])),
             "last heartbeat": f"{duration(now - w.heartbeat_at)} ago",
             "processed": w.processed, "failed": w.failed}
            for w in workers if w.kind == "consumer"]
    return pd.DataFrame(rows, columns=["worker", "state", "host", "pid", "running", "jobs",
                                       "last heartbeat", "processed", "failed"])


def _body() -> None:
    with page_queue() as queue:
        jobs = read(lambda q: q.running_jobs(limit=LIMIT), queue)
        workers = read(lambda q: q.workers(), queue) or []
        cut = jobs is not None and len(jobs) == LIMIT
        stats = (read(lambda q: q.stats(), queue) or {}) if cut else {}
        now = queue.now()
    if jobs is None:
        return
    if not jobs:
        st.info("No job is running now.")
    else:
        count = max(len(jobs), sum(s.leased for s in stats.values()))
        more = f" (the {LIMIT} longest running shown)" if cut else ""
        st.caption(f"{count} job(s) running{more}, longest running first. A job's "
                   "timeline: type its id under Browse jobs.")
        st.dataframe(running_frame(jobs, now), hide_index=True, column_config={
            "progress": st.column_config.ProgressColumn(
                "progress", min_value=0.0, max_value=1.0, format="percent",
                help="what the handler reported (set_progress)"),
            "message": st.column_config.TextColumn(width="medium")})
    consumers = [w for w in workers if w.kind == "consumer"]
    shown = first_workers(consumers, busy={j.worker for j in jobs if j.worker})
    if consumers:
        lost = sum(w.state == "lost" for w in consumers)
        more = (f" ({len(shown)} shown: those running a job first, then the latest "
                "heartbeats)" if len(shown) < len(consumers) else "")
        st.markdown("**Consumers**")
        st.caption(f"{len(consumers)} consumer(s), {lost} lost{more}. Lost: no heartbeat for "
                   f"{duration(config.WORKER_STALE_AFTER)} without a goodbye (killed or "
                   "crashed; its jobs come back when their leases end). The janitor forgets "
                   f"stopped and lost workers after {duration(config.WORKER_RETENTION)} "
                   "(`pq workers prune`).")
        st.dataframe(busy_workers(shown, jobs, now), hide_index=True)


def render_busy() -> None:
    """The running jobs and the consumers, refreshed every :data:`REFRESH` seconds."""
    st.subheader("Running now")

    @st.fragment(run_every=REFRESH)
    def live() -> None:
        _body()

    live()
