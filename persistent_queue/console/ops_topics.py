"""Ops console: publish a job to a topic (one copy per subscribed queue)."""

from __future__ import annotations

import streamlit as st

from .. import config
from ..errors import InvalidInput
from ..models import Job
from ..queue import Queue
from .frames import parse_headers, parse_json
from .markup import escape_markdown
from .session import attempt, read, show_flash

WHERE = "publish"
OTHER_TOPIC = "(type a topic)"


def _publish() -> None:
    s = st.session_state
    picked = s.get("pub_topic")
    topic = (s.get("pub_new_topic") or "").strip() or (picked if picked != OTHER_TOPIC else "")

    def action(q: Queue) -> list[Job]:
        if not topic:
            raise InvalidInput("pick a topic or type its name")
        return q.publish(topic, parse_json(s.get("pub_payload", "")),
                         headers=parse_headers(s.get("pub_headers", "")) or None,
                         priority=int(s.get("pub_priority") or 0),
                         dedup_key=(s.get("pub_dedup") or "").strip() or None)

    def said(jobs: list[Job]) -> str:
        copies = ", ".join(f"job {j.id} in '{j.queue}'"
                           + (" (deduplicated)" if j.deduplicated else "") for j in jobs)
        return f"Published to '{topic}': {copies}."

    attempt(action, said, where=WHERE)


def render_publish(queue: Queue) -> None:
    """The publish form, with the topics that have subscribers."""
    st.subheader("Publish to a topic")
    subscriptions = read(lambda q: q.subscriptions(), queue)
    if subscriptions is None:
        return
    topics: dict[str, list[str]] = {}
    for sub in subscriptions:
        topics.setdefault(sub.topic, []).append(sub.queue)
    if topics:
        st.caption("Subscribers: " + "; ".join(
            f"**{escape_markdown(t)}** → {escape_markdown(', '.join(qs))}"
            for t, qs in topics.items()))
    else:
        st.info("No topic has subscribers yet: subscribe a queue in the admin console "
                "(Workflows) or with `pq topics subscribe TOPIC QUEUE`.")
    with st.form("publish"):
        left, right = st.columns(2)
        left.selectbox("Topic", [*topics, OTHER_TOPIC], key="pub_topic")
        right.text_input("Topic name", key="pub_new_topic",
                         placeholder="used instead of the picked topic when filled")
        st.text_area("Message (JSON)", value='{\n  "event": "example"\n}', height=120,
                     key="pub_payload")
        one, two = st.columns(2)
        one.number_input("Priority", value=0, step=1, key="pub_priority",
                         min_value=config.PRIORITY_MIN, max_value=config.PRIORITY_MAX)
        two.text_input("Dedup key (per queue)", key="pub_dedup")
        st.text_area("Message headers (key=value lines or JSON)", value="", height=68,
                     key="pub_headers")
        st.form_submit_button("Publish", type="primary", on_click=_publish)
    show_flash(WHERE)
