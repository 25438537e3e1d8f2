"""Admin console: the processes supervisord runs, with start / stop / restart per program and
per group (through :mod:`persistent_queue.supervision`)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pandas as pd
import streamlit as st

from .. import supervision
from ..supervision import ProgramStatus
from .frames import duration
from .markup import escape_markdown
from .session import describe, flash, logged_in, show_flash

WHERE = "processes"
ACTIONS: dict[str, Callable[[str], None]] = {
    "Start": supervision.start, "Stop": supervision.stop, "Restart": supervision.restart}
_DONE = {"Start": "Started", "Stop": "Stopped", "Restart": "Restarted"}


def processes_frame(programs: list[ProgramStatus]) -> pd.DataFrame:
    """One row per process: name, group, state, uptime, pid, exit status, description."""
    rows = [{"program": p.namespec, "group": p.group, "state": p.state,
             "uptime": duration(p.uptime) if p.uptime is not None else "",
             "pid": p.pid or None, "exit status": p.exit_status,
             "description": p.description} for p in programs]
    return pd.DataFrame(rows, columns=["program", "group", "state", "uptime", "pid",
                                       "exit status", "description"])


def this_process() -> int:
    """The console's own process id (a program running it must not be stopped from it)."""
    return os.getpid()


def _act(action: str, name: str) -> None:
    if not logged_in():  # a forged click after a logout (callbacks run before the gate)
        return
    try:
        ACTIONS[action](name)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message
        flash("error", f"{action} {name}: {describe(exc)}", WHERE)
        return
    flash("success", f"{_DONE[action]} {name}.", WHERE)


def _controls(label: str, name: str, state: str, own: bool) -> None:
    """One line: the program (or group) and its three buttons."""
    text, *buttons = st.columns([3, 1, 1, 1])
    text.markdown(f"**{escape_markdown(label)}** · {escape_markdown(state)}")
    for column, action in zip(buttons, ACTIONS, strict=True):
        column.button(action, key=f"proc_{action.lower()}_{name}", on_click=_act,
                      args=(action, name), disabled=own and action != "Start",
                      help="This console runs in this process: stop or restart it from "
                           "supervisorctl." if own and action != "Start" else None)


def render_processes() -> None:
    """supervisord's programs and the buttons that start, stop and restart them."""
    st.header("Processes")
    show_flash(WHERE)
    try:
        programs = supervision.programs()
    except Exception as exc:  # noqa: BLE001 - supervisord down is a message, not a trace
        st.warning(escape_markdown(describe(exc)))
        return
    if not programs:
        st.info("supervisord runs no program.")
        return
    st.caption(f"From supervisord at {escape_markdown(supervision.default_url())}: "
               f"{sum(p.running for p in programs)} of {len(programs)} running.")
    st.dataframe(processes_frame(programs), hide_index=True,
                 column_config={"description": st.column_config.TextColumn(width="large")})
    groups: dict[str, list[ProgramStatus]] = {}
    for program in programs:
        groups.setdefault(program.group, []).append(program)
    me = this_process()
    for group, members in groups.items():
        if len(members) > 1:
            running = sum(p.running for p in members)
            _controls(f"{group} (group)", f"{group}:*", f"{running} of {len(members)} running",
                      any(p.pid == me for p in members))
        for program in members:
            _controls(program.namespec, program.namespec, program.state, program.pid == me)
