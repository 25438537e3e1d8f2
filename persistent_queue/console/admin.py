"""The admin console: metrics, queues, topics and schedules, dead letters, processes,
database health."""

from __future__ import annotations

import streamlit as st

from .admin_backup import render_backup
from .admin_dead import render_dead_letters
from .admin_health import render_health
from .admin_metrics import render_metrics
from .admin_processes import render_processes
from .admin_queues import render_queues
from .admin_workflows import render_workflows
from .markup import escape_markdown
from .session import db_label, logout_button, page_queue, require_login, setup_page

TITLE = "persistent-queue · admin"
PAGES = ["Metrics", "Queues", "Workflows", "Dead letters", "Processes", "Health", "Backup"]
REFRESH = {"every 2 s": 2.0, "every 5 s": 5.0, "every 15 s": 15.0, "every 60 s": 60.0,
           "off": None}


def main() -> None:
    """Render the whole admin console (one script run)."""
    setup_page(TITLE, "🛠️")
    if not require_login(TITLE):
        return
    st.sidebar.title("persistent-queue")
    page = st.sidebar.radio("Page", PAGES, key="admin_page")
    refresh = REFRESH[st.sidebar.selectbox("Auto-refresh metrics", list(REFRESH), index=1,
                                           key="admin_refresh")]
    st.sidebar.caption(f"Database: {escape_markdown(db_label())}")
    logout_button()
    if page == "Metrics":
        render_metrics(refresh)
        return
    if page == "Backup":
        render_backup()
        return
    if page == "Processes":
        render_processes()
        return
    with page_queue() as queue:
        if page == "Queues":
            render_queues(queue)
        elif page == "Workflows":
            render_workflows(queue)
        elif page == "Dead letters":
            render_dead_letters(queue)
        else:
            render_health(queue)
