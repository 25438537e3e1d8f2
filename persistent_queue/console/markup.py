"""Stored strings inside Streamlit's Markdown, shown as the text they are.

Streamlit renders Markdown (CommonMark, GitHub's extensions with bare-URL autolinks, ``$``
math, ``:colour[...]`` directives) in ``st.markdown`` and ``st.caption``, in alert bodies
(success, info, warning, error), headings, metric labels and values, and in the labels of
widgets, expanders and tabs. A stored string placed there as is can render an image (the
operator's browser fetches its URL as soon as the page shows), a link that hides its target,
or formatting that changes what the operator reads.

So the consoles show free text (payloads, headers, reasons, errors, dedup keys, worker names)
only in elements that render text literally (``st.text``, ``st.code``, ``st.json``,
dataframes), and every other value that must sit inside formatted text goes through
:func:`escape_markdown`. Nothing here imports Streamlit.
"""

from __future__ import annotations

import re

#: Invisible, zero-width and not a word character: placed before a bare URL or an ``@`` it
#: stops GitHub's autolink-literal rule, which Streamlit applies to text *after* Markdown
#: escapes are resolved (so a backslash alone cannot stop it).
WORD_JOINER = "\u2060"

#: Every ASCII punctuation character: CommonMark lets a backslash escape any of them, and
#: each one starts some construct (links, images, code, emphasis, HTML, lists, headings,
#: tables, strikethrough, math, entities, directives).
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_LINE_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_BARE_LINK = re.compile(r"(?i)(?=https?:|www\.|@)")


def escape_markdown(value: object) -> str:
    """``value`` as Markdown that Streamlit renders as exactly its text, on one line.

    Every ASCII punctuation character is backslash-escaped (no link, image, code span,
    emphasis, HTML, heading, list, table, math or directive can start), line breaks become
    spaces (a value never starts a new block), and a word joiner goes before ``http:``,
    ``https:``, ``www.`` and ``@`` so no bare URL or e-mail address turns into a link.
    """
    text = _LINE_BREAK.sub(" ", str(value))
    text = _BARE_LINK.sub(WORD_JOINER, text)
    return _PUNCTUATION.sub(r"\\\1", text)
