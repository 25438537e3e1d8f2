"""Admin console: live metrics, refreshed in a fragment so the rest of the app stays usable."""

from __future__ import annotations

from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from .. import config
from ..models import QueueStats, ThroughputPoint, WorkerInfo
from .display import alert_badges, table
from .frames import (
    SERIES_COLOURS,
    STATS_HELP,
    duration,
    firing,
    first_workers,
    stats_frame,
    throughput_frame,
    workers_frame,
)
from .markup import escape_markdown
from .session import page_queue, read

#: The most consumers the jobs-per-consumer chart draws (the busiest), one band each.
CHART_CONSUMERS = 20
WINDOWS = {"15 minutes": 900, "1 hour": 3600, "6 hours": 6 * 3600, "24 hours": 86400}


def colours(*series: str) -> alt.Scale:
    """The outcome colours of :data:`SERIES_COLOURS` for these series, in this order."""
    return alt.Scale(domain=list(series), range=[SERIES_COLOURS[s] for s in series])


def throughput_chart(frame: pd.DataFrame) -> alt.Chart:
    """Jobs per minute by series (enqueued, acked, failed, dead) as lines over time."""
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("time:T", title="minute (UTC)", axis=alt.Axis(format="%H:%M")),
            y=alt.Y("jobs:Q", title="jobs per minute"),
            color=alt.Color("series:N", scale=colours("enqueued", "acked", "failed", "dead"),
                            title=None),
            tooltip=["time:T", "series:N", "jobs:Q"],
        )
        .properties(height=260)
    )
    return chart


def _totals(stats: dict[str, QueueStats]) -> None:
    values = list(stats.values())
    cols = st.columns(6)
    cols[0].metric("Queues", len(values))
    cols[1].metric("Ready now", sum(s.ready for s in values))
    cols[2].metric("Scheduled", sum(s.scheduled for s in values))
    cols[3].metric("Leased", sum(s.leased for s in values))
    cols[4].metric("Dead letters", sum(s.dead for s in values))
    ages = [s.oldest_ready_age for s in values if s.oldest_ready_age is not None]
    cols[5].metric("Oldest ready job", duration(max(ages)) if ages else "-")


def _retries(stats: dict[str, QueueStats], points: list[ThroughputPoint]) -> pd.DataFrame:
    rows = []
    for name, s in stats.items():
        mine = [p for p in points if p.queue == name]
        acked = sum(p.acked for p in mine)
        failed = sum(p.failed for p in mine)
        rows.append({"queue": name, "waiting to retry": s.retry_pending,
                     "failed attempts (window)": failed, "acked (window)": acked,
                     "dead (window)": sum(p.dead for p in mine),
                     "failure rate": f"{failed / (acked + failed):.1%}" if acked + failed else "-"})
    return pd.DataFrame(rows, columns=["queue", "waiting to retry",
                                       "failed attempts (window)", "acked (window)",
                                       "dead (window)", "failure rate"])


def _workers(workers: list[WorkerInfo], now: float) -> None:
    st.markdown("#### Producers and consumers")
    if not workers:
        st.caption("No process has registered yet (consumers and producers register at start).")
        return
    running = sum(w.state == "running" for w in workers)
    lost = sum(w.state == "lost" for w in workers)
    shown = first_workers(workers)
    more = (f" ({len(shown)} shown: running ones first, then the latest heartbeats)"
            if len(shown) < len(workers) else "")
    st.caption(f"{running} running, {lost} lost, of {len(workers)} registered{more}. Lost: no "
               f"heartbeat for {duration(config.WORKER_STALE_AFTER)} without a goodbye "
               "(killed or crashed). The janitor forgets stopped and lost workers after "
               f"{duration(config.WORKER_RETENTION)} (`pq workers prune`).")
    st.dataframe(workers_frame(shown, now), hide_index=True)
    busiest = sorted((w for w in workers if w.kind == "consumer"),
                     key=lambda w: -(w.processed + w.failed))
    consumers = pd.DataFrame([{"consumer": w.id, "processed": w.processed, "failed": w.failed}
                              for w in busiest[:CHART_CONSUMERS]])
    title = "Jobs per consumer since it started" + (
        f" (the {CHART_CONSUMERS} busiest)" if len(busiest) > CHART_CONSUMERS else "")
    if not consumers.empty:
        long = consumers.melt("consumer", var_name="outcome", value_name="jobs")
        chart = (alt.Chart(long)
                 .mark_bar()
                 .encode(x=alt.X("consumer:N", title=None, axis=alt.Axis(labelAngle=0)),
                         xOffset="outcome:N", y=alt.Y("jobs:Q", title="jobs"),
                         color=alt.Color("outcome:N", scale=colours("processed", "failed"),
                                         title=None),
                         tooltip=["consumer:N", "outcome:N", "jobs:Q"])
                 .properties(height=220, title=title))
        st.altair_chart(chart)


def _body(window: int, focus: str) -> None:
    with page_queue() as queue:
        stats = read(lambda q: q.stats(), queue)
        queues = read(lambda q: q.list_queues(), queue)
        points = read(lambda q: q.throughput(window=window, bucket=60), queue)
        workers = read(lambda q: q.workers(), queue)
        alerts = firing(read(lambda q: q.alerts(), queue) or [])
        now = queue.now()
    if stats is None or queues is None or points is None:
        return
    _totals(stats)
    alert_badges(alerts)
    st.caption("Queues: " + escape_markdown(
        ", ".join(f"{name} ({s.ready} ready)" for name, s in stats.items()) or "none yet"))
    st.markdown("#### Jobs by state")
    table(stats_frame(stats, alerts), helps=STATS_HELP, medium=["alerts"])
    st.markdown(f"#### Throughput, last {duration(window)} ({escape_markdown(focus)})")
    frame = throughput_frame(points, None if focus == "all queues" else focus,
                             start=now - window, end=now, step=60.0)
    if not any(p.enqueued or p.acked or p.failed or p.dead for p in points):
        st.caption("No job was enqueued, acked or failed in this window.")
    else:
        st.altair_chart(throughput_chart(frame))
    st.markdown("#### Retries")
    st.dataframe(_retries(stats, points), hide_index=True)
    _workers(workers or [], now)
    st.caption(f"Updated {pd.Timestamp.now(tz='UTC').strftime('%H:%M:%S')} UTC")


def render_metrics(refresh: float | None) -> None:
    """Counts, throughput, retries and processes; re-read every ``refresh`` seconds."""
    st.header("Live metrics")
    left, right = st.columns(2)
    window = WINDOWS[left.selectbox("Window", list(WINDOWS), index=1, key="metrics_window")]
    with page_queue() as queue:
        names = [q.name for q in read(lambda q: q.list_queues(), queue) or []]
    focus = right.selectbox("Throughput of", ["all queues"] + names, key="metrics_focus")
    every = timedelta(seconds=refresh) if refresh else None

    @st.fragment(run_every=every)
    def live() -> None:
        _body(window, focus)

    live()
