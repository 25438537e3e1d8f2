"""Ops console: browse and search jobs, and a job's detail with its whole history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import streamlit as st

from ..errors import JobNotFound
from ..models import Job, JobState
from ..queue import Queue
from ..tasks import task_name
from .frames import (
    duration,
    history_frame,
    jobs_frame,
    parse_headers,
    payload_matches,
    timestamp,
)
from .markup import escape_markdown
from .session import read

ALL = "(all)"
PAGE_SIZES = [25, 50, 100, 200]
#: A text search scans at most this many jobs (newest first) before giving up.
SCAN_LIMIT = 5000
_SCAN_BATCH = 500


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a job search; ``more`` tells whether a next page may exist."""

    jobs: list[Job]
    more: bool
    scanned: int = 0


def find_jobs(queue: Queue, *, name: str | None, state: str | None,
              headers: dict[str, Any] | None, text: str, limit: int, offset: int) -> JobPage:
    """Jobs filtered by the library (queue, state, headers) and by text in the payload.

    The text filter runs here, over at most :data:`SCAN_LIMIT` of the newest matching jobs.
    """
    if not text:
        jobs = queue.list_jobs(name, state=state, headers=headers, limit=limit + 1,
                               offset=offset)
        return JobPage(jobs[:limit], len(jobs) > limit)
    found: list[Job] = []
    scanned = 0
    while scanned < SCAN_LIMIT and len(found) <= offset + limit:
        batch = queue.list_jobs(name, state=state, headers=headers, limit=_SCAN_BATCH,
                                offset=scanned)
        scanned += len(batch)
        found.extend(job for job in batch if payload_matches(job, text))
        if len(batch) < _SCAN_BATCH:
            break
    return JobPage(found[offset:offset + limit], len(found) > offset + limit, scanned)


def _header_filter(text: str) -> dict[str, Any] | None:
    return parse_headers(text) or None


def render_browse(queue: Queue, names: list[str]) -> None:
    """Filters, a page of jobs and the detail of one of them."""
    st.subheader("Browse jobs")
    one, two, three, four = st.columns(4)
    name = one.selectbox("Queue", [ALL] + names, key="browse_queue")
    state = two.selectbox("State", [ALL] + [s.value for s in JobState], key="browse_state")
    header_text = three.text_input("Header (key=value)", key="browse_header",
                                   placeholder="tenant=acme")
    text = four.text_input("Text in payload", key="browse_text")
    five, six, _ = st.columns([1, 1, 2])
    page_size = five.selectbox("Page size", PAGE_SIZES, key="browse_page_size")
    page = int(six.number_input("Page", min_value=1, value=1, step=1, key="browse_page"))

    def search(q: Queue) -> JobPage:
        return find_jobs(q, name=None if name == ALL else name,
                         state=None if state == ALL else state,
                         headers=_header_filter(header_text), text=text.strip(),
                         limit=page_size, offset=(page - 1) * page_size)

    result = read(search, queue)
    if result is None:
        return
    now = queue.now()
    if not result.jobs:
        st.info("No job matches these filters on this page.")
    else:
        first = (page - 1) * page_size + 1
        note = f" (scanned {result.scanned} jobs for the text)" if result.scanned else ""
        more = "; more on the next page" if result.more else ""
        st.caption(f"Jobs {first}-{first + len(result.jobs) - 1}{more}{note}. "
                   "Dead jobs are listed with state 'dead'; jobs waiting for their "
                   "dependencies with state 'waiting'.")
        st.dataframe(jobs_frame(result.jobs, now), hide_index=True)
    render_detail(queue, [job.id for job in result.jobs])


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
    """A job's fields, its task (name, arguments, result), payload, headers and history."""
    st.subheader("Job detail")
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
        "available at": timestamp(job.available_at),
        "updated": timestamp(job.updated_at),
        "finished": timestamp(job.finished_at),
        "lease ends": (f"{timestamp(job.lease_expires_at)} "
                       f"(in {duration(job.lease_expires_at - now)})"
                       if job.lease_expires_at and job.state is JobState.LEASED else ""),
    }
    st.table({k: [v] for k, v in times.items() if v})
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
    left.json(job.payload)
    right.markdown("**Headers**")
    right.json(job.headers)
    st.markdown(f"**History** ({len(events)} events: failures, expired leases, "
                "dead-letterings, redrives)")
    if events:
        st.dataframe(history_frame(events), hide_index=True)
    else:
        st.caption("No failures or redrives recorded.")
