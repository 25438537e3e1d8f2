"""How the consoles draw values and tables: JSON that may be a plain string, and tables whose
columns keep readable widths."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from .markup import escape_markdown


def show_json(value: Any, where: DeltaGenerator | None = None) -> None:
    """A payload, headers or result: a JSON string (the demo's plain-text lines) as its text
    (``st.json`` parses a str as JSON text and shows "Json Parse Error"), anything else as a
    JSON tree."""
    target = where if where is not None else st.container()
    if isinstance(value, str):
        target.code(value, language=None, wrap_lines=True)
    elif isinstance(value, (dict, list)):
        target.json(value)
    else:
        target.code(json.dumps(value, ensure_ascii=False), language="json")


def table(frame: pd.DataFrame, *, large: Iterable[str] = (), medium: Iterable[str] = (),
          helps: Mapping[str, str] | None = None, where: DeltaGenerator | None = None) -> None:
    """``frame`` as a dataframe without its index; the ``large`` and ``medium`` columns (free
    text: payloads, errors, reasons) get that width instead of their first words', and
    ``helps`` put a tooltip on a column's header."""
    config: dict[str, Any] = {}
    for name in large:
        config[name] = st.column_config.Column(width="large")
    for name in medium:
        config[name] = st.column_config.Column(width="medium")
    for name, text in (helps or {}).items():
        column = config.get(name) or st.column_config.Column()
        column["help"] = text
        config[name] = column
    (where or st).dataframe(frame, hide_index=True, column_config=config or None)


def alert_badges(firing: Mapping[str, Sequence[str]]) -> None:
    """One red badge per alert firing now (queue: what crossed which threshold)."""
    if firing:
        st.markdown("**Alerts firing** " + " ".join(
            f":red-badge[{escape_markdown(f'{queue}: {text}')}]"
            for queue, texts in firing.items() for text in texts))
