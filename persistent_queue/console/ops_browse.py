"""Ops console: browse and search jobs; a job's detail is :mod:`.ops_job`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from ..models import Job, JobState
from ..queue import Queue
from .display import table
from .frames import jobs_frame, parse_headers, payload_matches
from .ops_job import render_detail
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
        table(jobs_frame(result.jobs, now), large=["payload"], medium=["last error"])
    render_detail(queue, [job.id for job in result.jobs])
