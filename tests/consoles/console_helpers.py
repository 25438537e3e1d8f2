"""Helpers to drive an AppTest by labels and read its messages."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

#: Generous: the machine is shared and a first run imports pandas and altair.
RUN_TIMEOUT = 60


def run(app: AppTest) -> AppTest:
    """Run (or rerun) the app and fail on any uncaught exception."""
    app.run(timeout=RUN_TIMEOUT)
    assert not app.exception, [e.value for e in app.exception]
    return app


def button(app: AppTest, label: str) -> object:
    """The one button (or form submit button) with this label."""
    found = [b for b in app.button if b.label == label]
    assert len(found) == 1, f"{len(found)} buttons labelled {label!r}"
    return found[0]


def click(app: AppTest, label: str) -> AppTest:
    """Click a button by its label and rerun."""
    button(app, label).click()  # type: ignore[attr-defined]
    return run(app)


def messages(app: AppTest, kind: str) -> list[str]:
    """The texts of the success/error/info/warning boxes on the page."""
    return [str(element.value) for element in getattr(app, kind)]
