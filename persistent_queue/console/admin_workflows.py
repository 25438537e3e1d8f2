"""Admin console: topic subscriptions and recurring schedules (list, add, remove)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ..errors import InvalidInput
from ..models import ScheduleInfo
from ..queue import Queue
from .frames import parse_json, preview, timestamp
from .session import attempt, read, show_flash

WHERE = "workflows"
EVERY, CRON = "every N seconds", "cron expression"


def _subscribe() -> None:
    s = st.session_state
    topic = (s.get("sub_topic") or "").strip()
    target = (s.get("sub_queue") or "").strip()
    attempt(lambda q: q.subscribe(topic, queue=target),
            lambda added: f"Subscribed '{target}' to '{topic}'." if added
            else f"'{target}' was already subscribed to '{topic}'.", where=WHERE)


def _unsubscribe() -> None:
    picked = st.session_state.get("unsub_pick")
    if not picked:
        return
    topic, _, target = str(picked).partition(" → ")

    def action(q: Queue) -> bool:
        if not q.unsubscribe(topic, queue=target):
            raise InvalidInput(f"'{target}' is not subscribed to '{topic}' any more")
        return True

    attempt(action, lambda _: f"Unsubscribed '{target}' from '{topic}'.", where=WHERE)


def _add_schedule() -> None:
    s = st.session_state
    kind = s.get("sched_kind")

    def action(q: Queue) -> ScheduleInfo:
        payload = parse_json(s.get("sched_payload", ""))
        if kind == CRON:
            return q.schedule((s.get("sched_queue") or "").strip(), payload,
                              cron=(s.get("sched_cron") or "").strip(),
                              timezone=(s.get("sched_timezone") or "UTC").strip(),
                              name=(s.get("sched_name") or "").strip() or None)
        return q.schedule((s.get("sched_queue") or "").strip(), payload,
                          every=float(s.get("sched_every") or 0),
                          name=(s.get("sched_name") or "").strip() or None)

    attempt(action, lambda info: f"Saved schedule '{info.name}': next run "
            f"{timestamp(info.next_run_at)} UTC.", where=WHERE)


def _remove_schedule() -> None:
    name = st.session_state.get("sched_remove")
    if name:
        attempt(lambda q: q.unschedule(str(name)),
                lambda _: f"Removed schedule '{name}' (jobs it enqueued stay).", where=WHERE)


def schedules_frame(found: list[ScheduleInfo]) -> pd.DataFrame:
    """One row per schedule."""
    rows = [{"name": i.name, "queue": i.queue,
             "when": f"every {i.every:g} s" if i.every is not None
             else f"cron {i.cron} ({i.timezone})",
             "next run (UTC)": "finished" if i.finished else timestamp(i.next_run_at),
             "last run (UTC)": timestamp(i.last_run_at), "runs": i.runs, "missed": i.missed,
             "last job": i.last_job_id, "payload": preview(i.payload, 40)} for i in found]
    return pd.DataFrame(rows, columns=["name", "queue", "when", "next run (UTC)",
                                       "last run (UTC)", "runs", "missed", "last job",
                                       "payload"])


def _topics(queue: Queue) -> None:
    st.subheader("Topics")
    subs = read(lambda q: q.subscriptions(), queue)
    if subs is None:
        return
    if subs:
        st.dataframe(pd.DataFrame([{"topic": s.topic, "queue": s.queue,
                                    "since (UTC)": timestamp(s.created_at)} for s in subs]),
                     hide_index=True)
    else:
        st.info("No subscriptions: a publish to any topic is refused until a queue subscribes.")
    with st.form("subscribe"):
        a, b = st.columns(2)
        a.text_input("Topic", key="sub_topic", placeholder="orders")
        b.text_input("Queue", key="sub_queue", placeholder="billing")
        st.form_submit_button("Subscribe", on_click=_subscribe)
    if subs:
        left, right = st.columns([3, 1])
        left.selectbox("Subscription", [f"{s.topic} → {s.queue}" for s in subs],
                       key="unsub_pick")
        right.button("Unsubscribe", on_click=_unsubscribe)


def _schedules(queue: Queue) -> None:
    st.subheader("Schedules")
    st.caption("Fired by the scheduler process (`python -m persistent_queue.scheduler`); "
               "missed ticks are coalesced into one job.")
    found = read(lambda q: q.list_schedules(), queue)
    if found is None:
        return
    if found:
        st.dataframe(schedules_frame(found), hide_index=True)
    else:
        st.info("No schedule yet.")
    with st.form("add_schedule"):
        a, b, c = st.columns(3)
        a.text_input("Name", key="sched_name", placeholder="defaults to the queue's name")
        b.text_input("Queue", key="sched_queue", placeholder="reports")
        c.radio("Runs", [EVERY, CRON], key="sched_kind", horizontal=True)
        d, e, f = st.columns(3)
        d.number_input("Every (seconds)", value=60.0, min_value=0.01, step=10.0,
                       key="sched_every")
        e.text_input("Cron", key="sched_cron", placeholder="*/5 * * * *")
        f.text_input("Time zone (cron)", value="UTC", key="sched_timezone")
        st.text_area("Payload (JSON)", value="{}", height=80, key="sched_payload")
        st.form_submit_button("Save schedule", type="primary", on_click=_add_schedule)
    if found:
        left, right = st.columns([3, 1])
        left.selectbox("Schedule", [i.name for i in found], key="sched_remove")
        right.button("Remove schedule", on_click=_remove_schedule)


def render_workflows(queue: Queue) -> None:
    """Subscriptions and schedules with the forms that change them."""
    st.header("Workflows")
    show_flash(WHERE)
    _topics(queue)
    _schedules(queue)
