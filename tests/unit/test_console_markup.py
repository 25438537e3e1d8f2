"""escape_markdown: a stored string inside Markdown renders as exactly its text."""

from __future__ import annotations

import string

import pytest
from markdown_it import MarkdownIt

from persistent_queue.console.markup import WORD_JOINER, escape_markdown

_MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])

HOSTILE = [
    "![x](http://127.0.0.1:9/x.png) [click](http://evil.example/)",
    "k` ![k](http://127.0.0.1:9/k.png) `k",
    "<img src=x onerror=alert(1)> <http://evil.example/> &amp; &#60;",
    "# title\n- item\n1. one\n> quote\n    code\n===\n| a | b |\n|---|---|",
    "*em* _em_ **strong** ~~strike~~ $x^2$ :red[colour] [^note] \\* \\",
    "x._em_.y",
    string.punctuation,
    "a\r\nb\rc\u2028d",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_renders_as_one_paragraph_of_exactly_that_text(text: str) -> None:
    [opening, inline, closing] = _MARKDOWN.parse(escape_markdown(text))
    assert (opening.type, closing.type) == ("paragraph_open", "paragraph_close")
    assert [child.type for child in inline.children or []] == ["text"]
    shown = inline.children[0].content if inline.children else ""
    expected = " ".join(text.replace("\r\n", "\n").replace("\r", "\n")
                        .replace("\u2028", "\n").split("\n"))
    assert shown.replace(WORD_JOINER, "") == expected


def test_bare_urls_and_addresses_get_a_word_joiner_so_they_stay_text() -> None:
    # GitHub's autolink-literal rule runs on text after escapes are resolved: only a
    # non-boundary character before "http", "www." and "@" keeps them from becoming links.
    assert escape_markdown("see https://a.example and www.b.example or me@c.example") == (
        f"see {WORD_JOINER}https\\:\\/\\/a\\.example and {WORD_JOINER}www\\.b\\.example "
        f"or me{WORD_JOINER}\\@c\\.example")


def test_plain_words_and_numbers_are_unchanged() -> None:
    assert escape_markdown("emails 42 ready") == "emails 42 ready"
    assert escape_markdown(7) == "7"
