"""The ops console: enqueue and publish jobs, claim and finish them by hand, see what runs
now, browse jobs; the alerts firing above."""

from __future__ import annotations

import streamlit as st

from .display import alert_badges
from .frames import firing
from .markup import escape_markdown
from .ops_browse import render_browse
from .ops_busy import render_busy
from .ops_produce import render_claim, render_enqueue
from .ops_topics import render_publish
from .session import db_label, logout_button, page_queue, read, require_login, setup_page

TITLE = "persistent-queue · ops"


def main() -> None:
    """Render the whole ops console (one script run)."""
    setup_page(TITLE, "📬")
    if not require_login(TITLE):
        return
    logout_button()
    st.title(TITLE)
    st.caption(f"Database: {escape_markdown(db_label())}")
    with page_queue() as queue:
        queues = read(lambda q: q.list_queues(), queue)
        if queues is None:
            return
        names = [info.name for info in queues]
        alert_badges(firing(read(lambda q: q.alerts(), queue) or []))
        enqueue, publish, claim, busy, browse = st.tabs(["Enqueue", "Publish", "Claim",
                                                         "Running now", "Browse jobs"])
        with enqueue:
            render_enqueue(queue, names)
        with publish:
            render_publish(queue)
        with claim:
            render_claim(queue, names)
        with busy:
            render_busy()
        with browse:
            render_browse(queue, names)
