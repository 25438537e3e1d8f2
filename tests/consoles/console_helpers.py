"""Helpers to drive an AppTest by labels and read its messages."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from persistent_queue.console.markup import WORD_JOINER

#: Generous: the machine is shared and a first run imports pandas and altair.
RUN_TIMEOUT = 60

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def plain(markdown: str) -> str:
    """The text an operator reads of a label or message whose values were escaped for
    Markdown (backslash escapes resolved, word joiners dropped)."""
    return _ESCAPE.sub(r"\1", markdown).replace(WORD_JOINER, "")


def run(app: AppTest) -> AppTest:
    """Run (or rerun) the app and fail on any uncaught exception."""
    app.run(timeout=RUN_TIMEOUT)
    assert not app.exception, [e.value for e in app.exception]
    return app


def button(app: AppTest, label: str) -> object:
    """The one button (or form submit button) with this label (as the operator reads it)."""
    found = [b for b in app.button if plain(b.label) == label]
    assert len(found) == 1, f"{len(found)} buttons labelled {label!r}"
    return found[0]


def click(app: AppTest, label: str) -> AppTest:
    """Click a button by its label and rerun."""
    button(app, label).click()  # type: ignore[attr-defined]
    return run(app)


def messages(app: AppTest, kind: str) -> list[str]:
    """The texts of the success/error/info/warning boxes on the page, as the operator reads
    them."""
    return [plain(str(element.value)) for element in getattr(app, kind)]
