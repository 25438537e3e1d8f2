"""What every console page shares: the database, the login gate and action feedback.

The queue is opened for one script run (or one fragment run) and closed at its end: Streamlit
runs each rerun in a fresh thread and the backend keeps one connection per thread, so a cached
``Queue`` would collect a connection per rerun. Opening SQLite is a millisecond; reads run in
autocommit mode, so nothing holds a read transaction (and stops WAL checkpoints) between runs.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import streamlit as st

from ..errors import LeaseLost, QueueError
from ..queue import Queue
from .markup import escape_markdown

logger = logging.getLogger(__name__)
T = TypeVar("T")

PASSWORD_ENV = "PQ_CONSOLE_PASSWORD"
_AUTH_KEY = "pq_authenticated"
_FLASH_KEY = "pq_flash"


def db_path() -> str:
    """The database the consoles show: ``PQ_DB`` or ``data/queue.db`` (a file or a URL)."""
    return os.environ.get("PQ_DB") or "data/queue.db"


def db_label() -> str:
    """:func:`db_path` as shown on a page: a URL's password masked."""
    from ..storage.postgres.url import mask_url

    return mask_url(db_path())


@contextmanager
def open_queue() -> Iterator[Queue]:
    """A ``Queue`` on the console's database for the duration of one run."""
    queue = Queue(db_path(), durability="full", busy_timeout=10.0)
    try:
        yield queue
    finally:
        queue.close()


@contextmanager
def page_queue() -> Iterator[Queue]:
    """Like :func:`open_queue`, but a database that cannot be opened stops the page with a
    readable message."""
    try:
        queue = Queue(db_path(), durability="full", busy_timeout=10.0)
    except (QueueError, OSError, ValueError) as exc:
        st.error(escape_markdown(f"Cannot open the database {db_label()!r}: {exc}"))
        st.stop()
        raise  # st.stop() raises; this keeps type checkers informed
    try:
        yield queue
    finally:
        queue.close()


def setup_page(title: str, icon: str) -> None:
    """Page config and title; must be the first Streamlit call of a run."""
    st.set_page_config(page_title=title, page_icon=icon, layout="wide")


def require_login(title: str) -> bool:
    """True when no password is set or the user logged in; otherwise draw the login form and
    return False, and the caller ends the run there.

    The password comes from ``PQ_CONSOLE_PASSWORD``; it is compared in constant time. The
    run with the login form ends normally (not with ``st.stop()``), so Streamlit drops the
    fragments of the pages seen before a logout (a fragment reruns alone, without this gate).
    """
    if logged_in():
        return True
    expected = os.environ.get(PASSWORD_ENV, "")
    st.title(title)
    with st.form("login"):
        entered = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        if hmac.compare_digest(entered.encode("utf-8"), expected.encode("utf-8")):
            st.session_state[_AUTH_KEY] = True
            st.rerun()
        st.error("Wrong password.")
    return False


def logged_in() -> bool:
    """True when no password is set or this session logged in.

    Checked by every action, not only by the login gate: Streamlit runs a button's callback
    before the script (so before :func:`require_login`), for any button the session was ever
    shown, and a forged click after a logout would otherwise still run it.
    """
    return not os.environ.get(PASSWORD_ENV) or bool(st.session_state.get(_AUTH_KEY))


def logout_button() -> None:
    """A sidebar button to log out, shown when a password protects the console."""
    if os.environ.get(PASSWORD_ENV) and st.sidebar.button("Log out"):
        st.session_state[_AUTH_KEY] = False
        st.rerun()


def flash(kind: str, text: str, where: str = "page") -> None:
    """Remember a message (success, error, warning, info) for the section ``where``.

    ``text`` is plain text (it may quote names and typed input): it is shown escaped, never
    read as Markdown.
    """
    st.session_state.setdefault(f"{_FLASH_KEY}_{where}", []).append((kind, text))


def show_flash(where: str = "page") -> None:
    """Render and forget the messages remembered for the section ``where``."""
    for kind, text in st.session_state.pop(f"{_FLASH_KEY}_{where}", []):
        getattr(st, kind)(escape_markdown(text))


def describe(exc: BaseException) -> str:
    """A readable sentence for an error raised by an action."""
    if isinstance(exc, LeaseLost):
        return (f"The lease is no longer yours: {exc} It expired or was finished by someone "
                "else; claim the job again.")
    if isinstance(exc, QueueError):
        return f"{exc}"
    if isinstance(exc, ValueError):
        return f"Invalid input: {exc}"
    return f"Unexpected error ({type(exc).__name__}): {exc}"


def attempt(action: Callable[[Queue], T], success: Callable[[T], str] | None = None,
            *, where: str = "page", queue: Queue | None = None) -> T | None:
    """Run ``action`` on a queue; flash its success message, or a readable error.

    Returns the action's result, or None when it failed. Any exception is caught and shown:
    the console never shows a traceback. Nothing runs in a session that is not logged in.
    """
    if not logged_in():
        logger.warning("console action refused: not logged in")
        return None
    try:
        if queue is not None:
            result = action(queue)
        else:
            with open_queue() as opened:
                result = action(opened)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message
        if not isinstance(exc, QueueError | ValueError):
            logger.exception("console action failed")
        flash("error", describe(exc), where)
        return None
    if success is not None:
        flash("success", success(result), where)
    return result


def read(action: Callable[[Queue], T], queue: Queue) -> T | None:
    """Run a read for display; on failure show the error in place and return None."""
    try:
        return action(queue)
    except Exception as exc:  # noqa: BLE001 - a failed read is shown, not raised
        if not isinstance(exc, QueueError | ValueError):
            logger.exception("console read failed")
        st.error(escape_markdown(describe(exc)))
        return None


def state_value(key: str, default: Any = None) -> Any:
    """``st.session_state[key]`` or ``default``."""
    return st.session_state.get(key, default)
