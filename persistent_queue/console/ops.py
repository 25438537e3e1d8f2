"""The ops console: enqueue and publish jobs, claim and finish them by hand, browse jobs."""

from __future__ import annotations

import streamlit as st

from .markup import escape_markdown
from .ops_browse import render_browse
from .ops_produce import render_claim, render_enqueue
from .ops_topics import render_publish
from .session import db_label, logout_button, page_queue, read, require_login, setup_page

TITLE = "persistent-queue · ops"


def main() -> None:
    """Render the whole ops console (one script run)."""
    setup_page(TITLE, "📬")
    require_login(TITLE)
    logout_button()
    st.title(TITLE)
    st.caption(f"Database: {escape_markdown(db_label())}")
    with page_queue() as queue:
        queues = read(lambda q: q.list_queues(), queue)
        if queues is None:
            return
        names = [info.name for info in queues]
        enqueue, publish, claim, browse = st.tabs(["Enqueue", "Publish", "Claim",
                                                   "Browse jobs"])
        with enqueue:
            render_enqueue(queue, names)
        with publish:
            render_publish(queue)
        with claim:
            render_claim(queue, names)
        with browse:
            render_browse(queue, names)
