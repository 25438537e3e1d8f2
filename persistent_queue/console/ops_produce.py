"""Ops console: enqueue a job, and claim one interactively (ack, nack, requeue, extend)."""

from __future__ import annotations

import dataclasses
import time

import streamlit as st

from .. import config
from ..errors import InvalidInput
from ..models import Job, JobState
from ..queue import Queue
from .frames import duration, parse_headers, parse_ids, parse_json, timestamp
from .markup import escape_markdown
from .session import attempt, flash, show_flash

CLAIMED = "pq_claimed"
CLAIMED_AT = "pq_claimed_at"
CLAIM_QUEUE = "pq_claim_queue"
LAST_ENQUEUED = "pq_last_enqueued"
NEW_QUEUE = "(new queue)"


def _enqueue() -> None:
    s = st.session_state
    picked = s.get("enq_queue")
    name = (s.get("enq_new_queue") or "").strip() or (picked if picked != NEW_QUEUE else "")

    def action(q: Queue) -> Job:
        if not name:
            raise InvalidInput("pick a queue or type the name of a new one")
        payload = parse_json(s.get("enq_payload", ""))
        headers = parse_headers(s.get("enq_headers", ""))
        attempts = int(s.get("enq_attempts") or 0)
        return q.enqueue(name, payload, priority=int(s.get("enq_priority") or 0),
                         delay=float(s.get("enq_delay") or 0.0),
                         max_attempts=attempts or None, headers=headers or None,
                         depends_on=parse_ids(s.get("enq_depends", "")) or None,
                         dedup_key=(s.get("enq_dedup") or "").strip() or None)

    def said(job: Job) -> str:
        if job.deduplicated:
            return (f"Deduplicated: existing job {job.id} on queue '{job.queue}' has this "
                    "dedup key; nothing new was stored.")
        waits = (f"; it waits for job(s) {', '.join(map(str, job.depends_on))}"
                 if job.depends_on and job.state is JobState.WAITING else "")
        return f"Enqueued job {job.id} on queue '{job.queue}'{waits}."

    job = attempt(action, said, where="enqueue")
    s[LAST_ENQUEUED] = job


def render_enqueue(queue: Queue, names: list[str]) -> None:
    """The enqueue form and the job it created."""
    st.subheader("Enqueue a job")
    with st.form("enqueue"):
        left, right = st.columns(2)
        left.selectbox("Queue", names + [NEW_QUEUE], key="enq_queue")
        right.text_input("New queue name", key="enq_new_queue",
                         placeholder="used instead of the picked queue when filled")
        st.text_area("Payload (JSON)", value='{\n  "task": "example"\n}', height=150,
                     key="enq_payload")
        one, two, three = st.columns(3)
        one.number_input("Priority (higher first)", value=0, step=1, key="enq_priority",
                         min_value=config.PRIORITY_MIN, max_value=config.PRIORITY_MAX)
        two.number_input("Delay (seconds)", value=0.0, min_value=0.0, step=1.0,
                         max_value=config.MAX_DELAY, key="enq_delay")
        three.number_input("Max attempts (0 = the queue's)", value=0, min_value=0, step=1,
                           max_value=config.MAX_ATTEMPTS_LIMIT, key="enq_attempts")
        st.text_area("Headers (key=value lines, or a JSON object)", value="", height=80,
                     key="enq_headers")
        deps, dedup = st.columns(2)
        deps.text_input("Depends on (job ids, comma separated)", key="enq_depends",
                        placeholder="runs only after these jobs are acked")
        dedup.text_input("Dedup key", key="enq_dedup",
                         placeholder="returns the unfinished job with this key instead")
        st.form_submit_button("Enqueue", type="primary", on_click=_enqueue)
    show_flash("enqueue")
    job = st.session_state.get(LAST_ENQUEUED)
    if job is not None:
        with st.expander(f"Created job {job.id}", expanded=True):
            st.json({"id": job.id, "queue": job.queue, "state": job.state.value,
                     "priority": job.priority, "max_attempts": job.max_attempts,
                     "depends_on": list(job.depends_on), "dedup_key": job.dedup_key,
                     "deduplicated": job.deduplicated,
                     "created": f"{timestamp(job.created_at)} UTC",
                     "available": f"{timestamp(job.available_at)} UTC",
                     "headers": job.headers, "payload": job.payload})


def _claimed() -> Job | None:
    job = st.session_state.get(CLAIMED)
    return job if isinstance(job, Job) else None


def _release(message: str | None = None) -> None:
    st.session_state[CLAIMED] = None
    if message:
        flash("success", message, "claim")


def _claim() -> None:
    s = st.session_state
    name = s.get("claim_queue")
    timeout = float(s.get("claim_timeout") or 30.0)

    def action(q: Queue) -> Job | None:
        if not name:
            raise InvalidInput("there is no queue to claim from yet: enqueue a job first")
        return q.dequeue(name, visibility_timeout=timeout)

    before = len(s.get("pq_flash_claim", []))
    job = attempt(action, where="claim")
    if job is not None:
        s[CLAIMED], s[CLAIMED_AT], s[CLAIM_QUEUE] = job, time.time(), name
        flash("success", f"Claimed job {job.id} for {duration(timeout)}.", "claim")
    elif len(s.get("pq_flash_claim", [])) == before:
        flash("info", f"No job is ready in queue '{name}' (empty, delayed, leased or paused).",
              "claim")


def _ack() -> None:
    job = _claimed()
    if job is None:
        return

    def action(q: Queue) -> bool:
        q.ack(job)
        return True

    if attempt(action, where="claim"):
        _release(f"Acked job {job.id}: it is done.")
    else:
        _release()


def _nack() -> None:
    job = _claimed()
    if job is None:
        return
    error = st.session_state.get("claim_error") or None
    result = attempt(lambda q: q.nack(job, error=error), where="claim")
    if result is not None:
        state = "dead-lettered" if not isinstance(result, Job) else (
            f"back in the queue, available at {timestamp(result.available_at)} UTC")
        _release(f"Nacked job {job.id}: {state}.")
    else:
        _release()


def _requeue() -> None:
    job = _claimed()
    if job is None:
        return
    delay = float(st.session_state.get("claim_requeue_delay") or 0.0)
    if attempt(lambda q: q.requeue(job, delay), where="claim") is not None:
        _release(f"Requeued job {job.id} without counting the attempt.")
    else:
        _release()


def _extend() -> None:
    job = _claimed()
    if job is None:
        return
    seconds = float(st.session_state.get("claim_extend") or 30.0)
    extended = attempt(lambda q: q.extend(job, seconds), where="claim")
    if extended is None:
        _release()
        return
    s = st.session_state
    s[CLAIMED] = dataclasses.replace(job, lease_expires_at=extended.lease_expires_at)
    s[CLAIMED_AT] = time.time()
    flash("success", f"Extended the lease of job {job.id}: it now ends in {duration(seconds)}.",
          "claim")


@st.fragment(run_every=1.0)
def _countdown() -> None:
    job = _claimed()
    if job is None or job.lease_expires_at is None:
        return
    left = job.lease_expires_at - time.time()
    total = max(1.0, job.lease_expires_at - float(st.session_state.get(CLAIMED_AT) or 0))
    if left > 0:
        st.progress(min(1.0, left / total), text=f"Lease ends in {duration(left)}")
    else:
        st.warning(f"The lease expired {duration(-left)} ago: another consumer may claim the "
                   "job; acking it now will most likely fail.")


def render_claim(queue: Queue, names: list[str]) -> None:
    """Claim a job, watch its lease, then finish it."""
    st.subheader("Claim a job")
    job = _claimed()
    if job is None:
        # The selectbox is not drawn while a job is claimed, so Streamlit forgets its value:
        # the queue claimed from is kept apart and picked again after the ack.
        kept = st.session_state.get(CLAIM_QUEUE)
        if "claim_queue" not in st.session_state and kept in names:
            st.session_state["claim_queue"] = kept
        left, right = st.columns(2)
        left.selectbox("Queue", names, key="claim_queue")
        right.number_input("Visibility timeout (seconds)", value=30.0, min_value=1.0,
                           max_value=config.MAX_VISIBILITY_TIMEOUT, step=5.0, key="claim_timeout")
        st.button("Claim next job", type="primary", on_click=_claim)
        show_flash("claim")
        return
    show_flash("claim")
    st.markdown(f"**Job {job.id}** from queue {escape_markdown(job.queue)}, attempt "
                f"{job.attempts} of {job.max_attempts}, priority {job.priority}")
    _countdown()
    st.json({"payload": job.payload, "headers": job.headers, "last_error": job.last_error})
    ack, nack, requeue, extend = st.columns(4)
    ack.button("Ack", type="primary", on_click=_ack)
    nack.text_input("Error message", key="claim_error", placeholder="why it failed")
    nack.button("Nack", on_click=_nack)
    requeue.number_input("Requeue delay (s)", value=0.0, min_value=0.0, step=5.0,
                         max_value=config.MAX_DELAY, key="claim_requeue_delay")
    requeue.button("Requeue", on_click=_requeue)
    extend.number_input("Extend by (s)", value=30.0, min_value=1.0, step=5.0,
                        max_value=config.MAX_VISIBILITY_TIMEOUT, key="claim_extend")
    extend.button("Extend lease", on_click=_extend)
    st.button("Forget this claim (the lease runs out by itself)", on_click=_release)
