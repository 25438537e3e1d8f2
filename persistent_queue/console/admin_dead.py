"""Admin console: dead letters: list, inspect, edit one's payload, redrive one or all, purge."""

from __future__ import annotations

import json

import streamlit as st

from ..errors import InvalidInput
from ..queue import Queue
from ..tasks import TASK_HEADER
from .display import show_json, table
from .frames import dead_letters_frame, parse_json, timestamp
from .markup import escape_markdown
from .ops_job import render_timeline
from .session import attempt, read, show_flash

WHERE = "dead"
ALL = "(all queues)"
LIMIT = 500


def _scope() -> str | None:
    picked = st.session_state.get("dead_queue")
    return None if picked in (None, ALL) else str(picked)


def _redrive_one(job_id: int) -> None:
    attempt(lambda q: q.redrive(job_id),
            lambda ids: f"Redrove job {job_id} to its queue with its attempts reset."
            if ids else f"Job {job_id} is no longer a dead letter.", where=WHERE)


def _save_payload(job_id: int) -> None:
    """Replace the dead letter's payload with the JSON typed in its text area."""
    text = str(st.session_state.get(f"dead_payload_{job_id}") or "")
    attempt(lambda q: q.edit_dead_letter(job_id, payload=parse_json(text)),
            lambda _: f"Saved the payload of job {job_id}: a redrive runs it with this one.",
            where=WHERE)


def _redrive_all() -> None:
    scope = _scope()

    def action(q: Queue) -> list[int]:
        names = [scope] if scope else [n for n, s in q.stats().items() if s.dead]
        moved: list[int] = []
        for name in names:
            moved += q.redrive(name)
        return moved

    attempt(action, lambda ids: f"Redrove {len(ids)} dead letter(s) "
            f"{'of ' + repr(scope) if scope else 'of every queue'}.", where=WHERE)


def _purge() -> None:
    scope = _scope()
    older = float(st.session_state.get("dead_older_than") or 0.0)

    def action(q: Queue) -> int:
        if not st.session_state.get("dead_purge_confirm"):
            raise InvalidInput("tick the confirmation box to purge dead letters")
        return q.purge_dead_letters(scope, older_than=older * 3600)

    if attempt(action, lambda n: f"Deleted {n} dead letter(s) for good.",
               where=WHERE) is not None:
        st.session_state["dead_purge_confirm"] = False


def render_dead_letters(queue: Queue) -> None:
    """The dead-letter table, one letter's detail and the actions on them."""
    st.header("Dead letters")
    show_flash(WHERE)
    names = [q.name for q in read(lambda q: q.list_queues(), queue) or []]
    scope_name = st.selectbox("Queue", [ALL] + names, key="dead_queue")
    scope = None if scope_name == ALL else scope_name
    letters = read(lambda q: q.dead_letters(scope, limit=LIMIT), queue)
    if letters is None:
        return
    if not letters:
        st.success(escape_markdown("No dead letters" + (f" in '{scope}'." if scope else ".")))
    else:
        more = " (the newest shown)" if len(letters) == LIMIT else ""
        st.caption(f"{len(letters)} dead letter(s){more}, newest first.")
        table(dead_letters_frame(letters), medium=["payload", "last error"])
    left, right = st.columns(2)
    with left.container(border=True):
        st.markdown("**Redrive all**: move them back with attempts reset")
        st.button(f"Redrive all of {escape_markdown(scope_name)}", key="dead_redrive_all",
                  on_click=_redrive_all, disabled=not letters)
    with right.container(border=True):
        st.markdown("**Purge**: delete dead letters for good")
        st.number_input("Only those dead for more than (hours)", min_value=0.0, value=0.0,
                        step=1.0, key="dead_older_than")
        st.checkbox(f"Yes, delete the dead letters of {escape_markdown(scope_name)}",
                    key="dead_purge_confirm")
        st.button("Purge dead letters", key="dead_purge", on_click=_purge, disabled=not letters)
    if not letters:
        return
    by_id = {d.id: d for d in letters}
    st.markdown("#### Inspect")
    picked = st.selectbox("Dead letter", list(by_id), key="dead_pick",
                          format_func=lambda i: f"job {i} ({by_id[i].queue}): {by_id[i].reason}")
    letter = by_id.get(picked) if picked is not None else None
    if letter is None:
        return
    st.markdown(f"**Job {letter.id}** of queue {escape_markdown(letter.queue)}: "
                f"{letter.attempts} attempt(s), created {timestamp(letter.created_at)} UTC, "
                f"dead since {timestamp(letter.dead_at)} UTC.")
    st.text(f"Reason: {letter.reason}")
    task = letter.headers.get(TASK_HEADER)
    if isinstance(task, str):
        st.text(f"Task: {task} (its arguments are in the payload)")
    if letter.last_error:
        st.code(letter.last_error, language=None)
    left, right = st.columns(2)
    left.markdown("**Payload**")
    show_json(letter.payload, left)
    right.markdown("**Headers**")
    show_json(letter.headers, right)
    with st.container(border=True):
        st.markdown("**Edit the payload** before redriving it (JSON, checked as an enqueue "
                    "checks it)")
        st.text_area("Payload (JSON)", key=f"dead_payload_{letter.id}", height=150,
                     value=json.dumps(letter.payload, indent=2, ensure_ascii=False))
        st.button("Save payload", key="dead_save_payload", on_click=_save_payload,
                  args=(letter.id,))
    render_timeline(read(lambda q: q.history(letter.id), queue) or [])
    st.button(f"Redrive job {letter.id}", key="dead_redrive_one", type="primary",
              on_click=_redrive_one, args=(letter.id,))
