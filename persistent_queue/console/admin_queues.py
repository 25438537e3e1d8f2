"""Admin console: create, configure, pause, purge and delete queues."""

from __future__ import annotations

from typing import Any

import streamlit as st

from .. import config, flow
from ..errors import InvalidInput
from ..models import DeletedQueue, QueueInfo
from ..queue import Queue
from .display import alert_badges, table
from .frames import STATS_HELP, firing, flow_frame, settings_frame, stats_frame
from .markup import escape_markdown
from .session import attempt, read, show_flash

WHERE = "queues"
#: The largest integer a number input holds (a browser's exact integers). The library takes
#: counts up to 2**62: a larger one (set from the command line) is shown, and saved, as this.
BROWSER_MAX = 2**53 - 1


def _shown(value: int | None) -> int:
    """A stored count (None: no limit, 0) as a number input can hold it."""
    return min(value or 0, BROWSER_MAX)


def _limits(prefix: str) -> dict[str, Any]:
    """The flow-control fields of a form: 0 or an empty text is no limit."""
    s = st.session_state
    return {
        "concurrency": int(s.get(f"{prefix}_concurrency") or 0) or None,
        "rate_limit": (s.get(f"{prefix}_rate_limit") or "").strip() or None,
        "group_concurrency": int(s.get(f"{prefix}_group_concurrency") or 0) or None,
        "group_rate_limit": (s.get(f"{prefix}_group_rate_limit") or "").strip() or None,
    }


def _alerts(prefix: str) -> dict[str, Any]:
    """The alert thresholds of a form: 0 is no alert."""
    s = st.session_state
    rate = float(s.get(f"{prefix}_alert_failure_rate") or 0.0)
    return {
        "alert_depth": int(s.get(f"{prefix}_alert_depth") or 0) or None,
        "alert_oldest_age": float(s.get(f"{prefix}_alert_oldest_age") or 0.0) or None,
        "alert_failure_rate": rate / 100 or None,
        "alert_dead_letters": int(s.get(f"{prefix}_alert_dead_letters") or 0) or None,
    }


def _alert_inputs(prefix: str, info: QueueInfo | None = None) -> None:
    """The four alert thresholds of a form (``info``: the queue's current ones)."""
    a, b, c, d = st.columns(4)
    a.number_input("Depth alert (0 = none)", value=_shown(info.alert_depth if info else None),
                   min_value=0, max_value=BROWSER_MAX, step=1, key=f"{prefix}_alert_depth",
                   help="Fires when this many jobs are ready now.")
    b.number_input("Oldest ready alert (s, 0 = none)",
                   value=float((info and info.alert_oldest_age) or 0.0), min_value=0.0,
                   step=60.0, key=f"{prefix}_alert_oldest_age",
                   help="Fires when the oldest ready job has waited this many seconds.")
    c.number_input("Failure rate alert (%, 0 = none)",
                   value=float((info and info.alert_failure_rate) or 0.0) * 100,
                   min_value=0.0, max_value=100.0, step=5.0,
                   key=f"{prefix}_alert_failure_rate",
                   help="Fires when this share of the attempts ended in the last 15 minutes "
                        "failed.")
    d.number_input("Dead letters alert (0 = none)",
                   value=_shown(info.alert_dead_letters if info else None), min_value=0,
                   max_value=BROWSER_MAX, step=1,
                   key=f"{prefix}_alert_dead_letters",
                   help="Fires when this many of the queue's jobs are dead letters.")


def _create() -> None:
    s = st.session_state
    size = int(s.get("create_max_size") or 0)
    attempt(lambda q: q.create_queue(
        (s.get("create_name") or "").strip(), max_attempts=int(s.get("create_attempts") or 1),
        visibility_timeout=float(s.get("create_timeout") or 1.0), max_size=size or None,
        **_limits("create"), **_alerts("create")),
        lambda info: f"Created queue '{info.name}'.", where=WHERE)


def _update(name: str) -> None:
    s = st.session_state
    size = int(s.get(f"edit_max_size_{name}") or 0)
    attempt(lambda q: q.update_queue(
        name, max_attempts=int(s.get(f"edit_attempts_{name}") or 1),
        visibility_timeout=float(s.get(f"edit_timeout_{name}") or 1.0), max_size=size or None,
        **_limits(f"edit_{name}"), **_alerts(f"edit_{name}")),
        lambda info: f"Saved the settings of queue '{info.name}'.", where=WHERE)


def _limit_inputs(prefix: str, info: QueueInfo | None = None) -> None:
    """The four flow-control fields of a form (``info``: the queue's current limits)."""
    a, b, c, d = st.columns(4)
    a.number_input("Concurrency (0 = none)", value=(info and info.concurrency) or 0,
                   min_value=0, max_value=flow.MAX_LIMIT, step=1, key=f"{prefix}_concurrency",
                   help="At most this many jobs of the queue leased at once, across every "
                        "consumer.")
    b.text_input("Rate limit", value=(info and info.rate_limit) or "",
                 placeholder="e.g. 50/s, 100/m, 1000/h", key=f"{prefix}_rate_limit",
                 help="At most this many claims per period, across every consumer (a burst "
                      "of the count, then evenly spaced). Empty: none.")
    c.number_input("Group concurrency (0 = none)", value=(info and info.group_concurrency) or 0,
                   min_value=0, max_value=flow.MAX_LIMIT, step=1,
                   key=f"{prefix}_group_concurrency",
                   help="At most this many jobs of one group at once; 1 runs each group's "
                        "jobs one at a time, in enqueue order.")
    d.text_input("Group rate limit", value=(info and info.group_rate_limit) or "",
                 placeholder="e.g. 5/s", key=f"{prefix}_group_rate_limit",
                 help="At most this many claims per period of one group. Empty: none.")


def _pause(name: str, paused: bool) -> None:
    if paused:
        attempt(lambda q: q.resume(name), lambda _: f"Resumed queue '{name}'.", where=WHERE)
    else:
        attempt(lambda q: q.pause(name),
                lambda _: f"Paused queue '{name}': consumers claim nothing from it.", where=WHERE)


def _confirmed(name: str, key: str) -> None:
    if (st.session_state.get(key) or "").strip() != name:
        raise InvalidInput(f"type the queue name '{name}' to confirm")


def _purge(name: str) -> None:
    def action(q: Queue) -> int:
        _confirmed(name, "purge_confirm")
        return q.purge(name)

    if attempt(action, lambda n: f"Purged {n} unfinished job(s) from '{name}'.",
               where=WHERE) is not None:
        st.session_state["purge_confirm"] = ""


def _delete(name: str) -> None:
    force = bool(st.session_state.get("delete_force"))

    def action(q: Queue) -> DeletedQueue:
        _confirmed(name, "delete_confirm")
        return q.delete_queue(name, force=force)

    def message(deleted: DeletedQueue) -> str:
        return " ".join(filter(None, [f"Deleted queue '{deleted.name}'", deleted.summary()])) + "."

    if attempt(action, message, where=WHERE) is not None:
        st.session_state["delete_confirm"] = ""


def _create_form() -> None:
    with st.form("create_queue", clear_on_submit=False):
        st.markdown("#### Create a queue")
        a, b, c, d = st.columns(4)
        a.text_input("Name", key="create_name", placeholder="emails")
        b.number_input("Max attempts", value=config.DEFAULT_MAX_ATTEMPTS, min_value=1,
                       max_value=config.MAX_ATTEMPTS_LIMIT, step=1, key="create_attempts")
        c.number_input("Visibility timeout (s)", value=config.DEFAULT_VISIBILITY_TIMEOUT,
                       min_value=1.0, max_value=config.MAX_VISIBILITY_TIMEOUT, step=5.0,
                       key="create_timeout")
        d.number_input("Max size (0 = unbounded)", value=0, min_value=0,
                       max_value=BROWSER_MAX, step=1, key="create_max_size")
        _limit_inputs("create")
        _alert_inputs("create")
        st.form_submit_button("Create queue", type="primary", on_click=_create)


def _manage(info: QueueInfo) -> None:
    name = info.name
    st.markdown(f"#### Queue {escape_markdown(name)} ({'paused' if info.paused else 'running'})")
    st.button("Resume" if info.paused else "Pause", key="pause_toggle",
              on_click=_pause, args=(name, info.paused))
    with st.form(f"edit_{name}"):
        a, b, c = st.columns(3)
        a.number_input("Max attempts", value=info.max_attempts, min_value=1,
                       max_value=config.MAX_ATTEMPTS_LIMIT, step=1, key=f"edit_attempts_{name}")
        b.number_input("Visibility timeout (s)", value=float(info.visibility_timeout),
                       min_value=1.0, max_value=config.MAX_VISIBILITY_TIMEOUT, step=5.0,
                       key=f"edit_timeout_{name}")
        c.number_input("Max size (0 = unbounded)", value=_shown(info.max_size), min_value=0,
                       max_value=BROWSER_MAX, step=1, key=f"edit_max_size_{name}")
        _limit_inputs(f"edit_{name}", info)
        _alert_inputs(f"edit_{name}", info)
        st.form_submit_button("Save settings", on_click=_update, args=(name,))
    danger_left, danger_right = st.columns(2)
    with danger_left.expander("Purge: delete every unfinished job"):
        st.text_input(f"Type '{escape_markdown(name)}' to confirm", key="purge_confirm")
        st.button("Purge queue", key="purge_button", on_click=_purge, args=(name,))
    with danger_right.expander("Delete the queue"):
        st.caption("Deletes the queue with its done jobs, dead letters and history, the "
                   "schedules that target it and its topic subscriptions.")
        st.checkbox("Also delete its unfinished jobs", key="delete_force")
        st.text_input(f"Type '{escape_markdown(name)}' to confirm", key="delete_confirm")
        st.button("Delete queue", key="delete_button", on_click=_delete, args=(name,))


def render_queues(queue: Queue) -> None:
    """The queues with their counts and settings, and the forms that change them."""
    st.header("Queues")
    show_flash(WHERE)
    queues = read(lambda q: q.list_queues(), queue)
    stats = read(lambda q: q.stats(), queue)
    alerts = firing(read(lambda q: q.alerts(), queue) or [])
    if queues is None or stats is None:
        return
    if queues:
        alert_badges(alerts)
        table(stats_frame({q.name: stats[q.name] for q in queues if q.name in stats}, alerts),
              helps=STATS_HELP, medium=["alerts"])
        st.markdown("#### Settings")
        table(settings_frame(queues))
        limited = flow_frame(stats, queues)
        if len(limited):
            st.markdown("#### Flow control")
            st.caption("Limits enforced across every consumer; in flight: jobs leased now; "
                       "held back: ready jobs the limits keep waiting now (throttled now); "
                       "throttled claims: claims that got fewer jobs because of a limit.")
            st.dataframe(limited, hide_index=True)
    else:
        st.info("No queue yet: create one below, or enqueue a job from the ops console.")
    _create_form()
    if queues:
        by_name = {q.name: q for q in queues}
        picked = st.selectbox("Manage queue", list(by_name), key="manage_queue")
        if picked in by_name:
            _manage(by_name[picked])
