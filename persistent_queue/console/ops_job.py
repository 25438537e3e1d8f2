"""Ops console: one job's detail and an operator's actions on it.

The detail shows the job's fields, how its attempt runs or ran (worker, start, run time,
timeout, a progress bar with the handler's message while it runs, a cancellation request),
its task, payload and headers, and its timeline (enqueued, claimed by a worker, failed /
acked / cancelled with the attempt's run time, dead-lettered, redriven). The actions are
Cancel (with a reason), Delete and Retry now; an action the job's state does not allow is
shown disabled, with the reason. Actions run in button callbacks, on a queue of their own,
before the page is drawn again.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from ..errors import InvalidInput, JobNotFound
from ..models import Job, JobEvent, JobState
from ..queue import Queue
from ..tasks import task_name
from .display import show_json, table
from .frames import duration, run_time, timeline_frame, timestamp
from .markup import escape_markdown
from .session import attempt, read, show_flash

WHERE = "detail"
#: The actions on one job, as their buttons are labelled.
CANCEL, DELETE, RETRY = "Cancel job", "Delete job", "Retry now"


def blocked_actions(job: Job, now: float) -> dict[str, str | None]:
    """For each action, why the job's state does not allow it (None: it does)."""
    state = job.state
    cancel: str | None = {
        JobState.DONE: "the job is done: there is nothing to cancel",
        JobState.CANCELLED: "the job is already cancelled",
        JobState.DEAD: "the job is dead-lettered: redrive or purge it on the admin console",
    }.get(state)
    if state is JobState.LEASED and job.cancel_requested:
        cancel = "cancellation already requested: its worker stops it"
    delete: str | None = {
        JobState.LEASED: "the job is running: cancel it first",
        JobState.DEAD: "the job is dead-lettered: purge it on the admin console",
    }.get(state)
    retry: str | None = None
    if state is not JobState.READY:
        retry = f"only a delayed or backing-off job can be retried now; this one is {state}"
    elif job.available_at <= now:
        retry = "the job is already claimable: there is no delay to skip"
    return {CANCEL: cancel, DELETE: delete, RETRY: retry}


def _cancel(job_id: int) -> None:
    reason = str(st.session_state.get("detail_cancel_reason") or "").strip() or None

    def said(job: Job) -> str:
        if job.state is JobState.CANCELLED:
            return f"Cancelled job {job_id}: it will not run."
        worker = f" ({job.claimed_by})" if job.claimed_by else ""
        return (f"Cancellation of job {job_id} requested: its worker{worker} stops it and the "
                "job ends cancelled.")

    attempt(lambda q: q.cancel(job_id, reason=reason), said, where=WHERE)


def _delete(job_id: int) -> None:
    confirm = f"detail_delete_confirm_{job_id}"  # per job: a tick never carries to another

    def action(q: Queue) -> bool:
        if not st.session_state.get(confirm):
            raise InvalidInput(f"tick the box to delete job {job_id} for good")
        q.delete_job(job_id)
        return True

    if attempt(action, lambda _: f"Deleted job {job_id} with its history.", where=WHERE):
        # The job is gone: the detail shows none.
        st.session_state[confirm] = False
        st.session_state["detail_id"] = 0
        st.session_state["detail_pick"] = None


def _retry(job_id: int) -> None:
    attempt(lambda q: q.retry_now(job_id),
            lambda _: f"Job {job_id} is ready: the next claim may take it.", where=WHERE)


def _render_run(job: Job, now: float) -> None:
    """Who runs or ran the job's attempt, since when, for how long, under what limit."""
    running = job.state is JobState.LEASED
    if running and job.progress is not None:
        fraction, message = job.progress
        text = f"{fraction:.0%}" + (f": {message}" if message else "")
        st.progress(min(max(fraction, 0.0), 1.0), text=escape_markdown(text))
    elif running:
        st.caption("Running; its handler has reported no progress.")
    elapsed = (now - job.started_at) if running and job.started_at is not None else None
    rows = {
        "worker": job.claimed_by or "",
        "started": timestamp(job.started_at),
        "running for": duration(elapsed) if elapsed is not None else "",
        "run time": run_time(job.run_time),
        "timeout": f"{job.timeout:g} s" if job.timeout is not None else "none",
    }
    # A dataframe: worker names are free text, shown literally.
    st.dataframe(pd.DataFrame([{k: v for k, v in rows.items() if v}]), hide_index=True)
    if job.cancel_requested:
        st.text("Cancellation requested" + (f": {job.cancel_reason}"
                                            if job.cancel_reason else ""))


def _render_actions(job: Job, now: float) -> None:
    blocked = blocked_actions(job, now)
    cancel, delete, retry = st.columns(3)
    with cancel.container(border=True):
        st.text_input("Reason (optional)", key="detail_cancel_reason",
                      disabled=blocked[CANCEL] is not None)
        st.button(CANCEL, key="detail_cancel", on_click=_cancel, args=(job.id,),
                  disabled=blocked[CANCEL] is not None)
    with delete.container(border=True):
        st.checkbox(f"Yes, delete job {job.id} for good", key=f"detail_delete_confirm_{job.id}",
                    disabled=blocked[DELETE] is not None)
        st.button(DELETE, key="detail_delete", on_click=_delete, args=(job.id,),
                  disabled=blocked[DELETE] is not None)
    with retry.container(border=True):
        st.caption("A delayed or backing-off job becomes claimable now.")
        st.button(RETRY, key="detail_retry", on_click=_retry, args=(job.id,),
                  disabled=blocked[RETRY] is not None)
    for action, why in blocked.items():
        if why is not None:
            st.caption(escape_markdown(f"{action}: not available, {why}."))


def _state_of(queue: Queue, job_id: int) -> str:
    try:
        return queue.get_job(job_id).state.value
    except JobNotFound:
        return "deleted"


def as_json_text(value: Any) -> str:
    """``value`` as indented JSON text, shown with ``st.code`` (literal: never Markdown, and
    a string stays a string where ``st.json`` would parse it)."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def _render_task(job: Job) -> None:
    """A task job's name, arguments and (once done) result, as literal text."""
    name = task_name(job)
    if name is not None:
        st.markdown("**Task**")
        st.code(name, language=None)
        left, right = st.columns(2)
        left.markdown("**Arguments**")
        left.code(as_json_text(job.payload["args"]), language="json")
        right.markdown("**Keyword arguments**")
        right.code(as_json_text(job.payload["kwargs"]), language="json")
    if job.state is JobState.DONE and (name is not None or job.result is not None):
        st.markdown("**Result**")
        st.code(as_json_text(job.result), language="json")


def render_detail(queue: Queue, ids: list[int]) -> None:
    """A job's fields, its run, the actions on it, its task, payload, headers and timeline."""
    st.subheader("Job detail")
    show_flash(WHERE)
    left, right = st.columns(2)
    options: list[int | None] = [None, *ids]
    picked = left.selectbox("A job of this page", options, key="detail_pick",
                            format_func=lambda i: "-" if i is None else f"job {i}")
    typed = right.number_input("…or any job id", min_value=0, value=0, step=1, key="detail_id")
    job_id = int(typed) or picked
    if not job_id:
        st.caption("Pick a job to see its payload and history.")
        return
    job = read(lambda q: q.get_job(job_id), queue)
    if job is None:
        return
    events = read(lambda q: q.history(job_id), queue) or []
    now = queue.now()
    a, b, c, d = st.columns(4)
    a.metric("State", job.state.value)
    b.metric("Attempts", f"{job.attempts} / {job.max_attempts}")
    c.metric("Priority", job.priority)
    d.metric("Queue", escape_markdown(job.queue))
    times = {
        "created": timestamp(job.created_at),
        # A leased job's is its lease end (shown below); a finished job's means nothing.
        "available at": timestamp(job.available_at)
        if job.state in (JobState.READY, JobState.WAITING) else "",
        "updated": timestamp(job.updated_at),
        "finished": timestamp(job.finished_at),
        "lease ends": (f"{timestamp(job.lease_expires_at)} "
                       f"(in {duration(job.lease_expires_at - now)})"
                       if job.lease_expires_at and job.state is JobState.LEASED else ""),
    }
    st.table({k: [v] for k, v in times.items() if v})
    _render_run(job, now)
    _render_actions(job, now)
    if job.depends_on:
        states = read(lambda q: {i: _state_of(q, i) for i in job.depends_on}, queue) or {}
        st.markdown("**Depends on** " + ", ".join(
            f"job {i} ({states.get(i, '?')})" for i in job.depends_on)
            + (": it waits until all are acked." if job.state is JobState.WAITING else "."))
    if job.dedup_key:
        st.text(f"Dedup key: {job.dedup_key}")
    if job.last_error:
        st.markdown("**Last error**")
        st.code(job.last_error, language=None)
    _render_task(job)
    left, right = st.columns(2)
    left.markdown("**Payload**")
    show_json(job.payload, left)
    right.markdown("**Headers**")
    show_json(job.headers, right)
    render_timeline(events, job)


def render_timeline(events: list[JobEvent], job: Job | None = None) -> None:
    """A job's timeline: enqueued, claimed by which worker, how long each attempt ran, and
    how it ended (acked with its result, failed with its error, cancelled, dead-lettered)."""
    st.markdown(f"**Timeline** ({len(events)} events: enqueued, claimed by a worker, "
                "failed / acked / cancelled with the attempt's run time, dead-lettered, "
                "redriven)")
    if events:
        table(timeline_frame(events, job), large=["detail"])
