"""Admin console: the database's health (sizes, free disk or server facts, settings,
integrity check)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ..health import DatabaseHealth, database_health
from ..queue import Queue
from .frames import size
from .markup import escape_markdown
from .session import read


def render_health(queue: Queue) -> None:
    """Sizes, disk, engine settings and, on demand, SQLite's integrity check."""
    st.header("System health")
    check = st.button("Run integrity check (reads the whole file)", key="health_integrity")
    with st.spinner("Checking…") if check else st.empty():
        report = read(lambda q: database_health(q, integrity=check), queue)
    if report is None:
        return
    problems = [*report.problems, *report.warnings]
    for problem in problems:
        st.warning(escape_markdown(problem))
    if not problems:
        st.success("Healthy" + (": integrity check ok." if report.integrity == "ok" else "."))
    if report.server:
        _render_server(report)
    else:
        _render_file(report)


def _render_file(report: DatabaseHealth) -> None:
    a, b, c, d = st.columns(4)
    a.metric("Database file", size(report.file_bytes))
    b.metric("WAL", size(report.wal_bytes))
    c.metric("Free disk", size(report.free_disk_bytes))
    d.metric("Schema version", report.schema_version)
    _integrity(report)
    _settings({
        "path": report.path,
        "SQLite version": report.sqlite_version,
        "journal_mode": report.journal_mode,
        "synchronous": report.synchronous,
        "auto_vacuum": report.auto_vacuum,
        "page_size": report.page_size,
        "page_count": report.page_count,
        "freelist_count (reusable pages)": report.freelist_count,
        "busy_timeout (ms)": report.busy_timeout_ms,
        "disk total": size(report.total_disk_bytes),
    })


def _render_server(report: DatabaseHealth) -> None:
    a, b, c, d = st.columns(4)
    a.metric("Database size", size(report.file_bytes))
    b.metric("Connections", f"{report.connections} / {report.max_connections}")
    c.metric("PostgreSQL", escape_markdown(report.server_version))
    d.metric("Schema version", report.schema_version)
    _integrity(report)
    _settings({
        "database": report.path,
        "PostgreSQL version": report.server_version,
        "synchronous_commit": report.synchronous,
        "lock_timeout": report.settings.get("lock_timeout", ""),
        "busy_timeout (ms)": report.busy_timeout_ms,
        "max_connections": report.max_connections,
    })


def _integrity(report: DatabaseHealth) -> None:
    if report.integrity is not None:
        st.markdown("**Integrity check**")
        st.code(report.integrity, language=None)


def _settings(settings: dict[str, object]) -> None:
    st.dataframe(pd.DataFrame({"setting": list(settings),
                               "value": [str(v) for v in settings.values()]}),
                 hide_index=True)
