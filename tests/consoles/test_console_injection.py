"""Stored strings are shown as text in the consoles, never interpreted as Markdown.

Any API client with the full token can store a dead letter's reason, a dedup key, payloads,
headers, errors and worker names; queue, topic and schedule names are restricted to letters,
digits, ``_``, ``.`` and ``-`` but ``www.x.y`` is one. Streamlit renders Markdown in
markdown and caption elements, alert bodies, headings, metric labels and values, table cells
and widget, expander and tab labels: a Markdown image there makes the operator's browser fetch
the attacker's URL the moment the page shows. Every page is rendered with hostile data, and
every string Streamlit would read as Markdown is parsed by a CommonMark parser (plus the
GitHub bare-URL autolink rule Streamlit applies to text): no image, link, raw HTML, emphasis
or math may come out of it, and the hostile strings are still readable as text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator

from console_helpers import click, messages, plain, run
from markdown_it import MarkdownIt
from markdown_it.token import Token
from streamlit.testing.v1 import AppTest

from persistent_queue import Queue

Console = Callable[[str], AppTest]

IMAGE = "![x](http://127.0.0.1:9/x.png)"
REASON = f"{IMAGE} [click](http://evil.example/)\n# not a heading $x$ <b>bold</b>"
#: Closes the code span the detail page used to put it in, then an image, then reopens one.
DEDUP_KEY = "k` ![k](http://127.0.0.1:9/k.png) `k"
ERROR = "[e](http://evil.example/e) *em* ~~s~~ | a | b |"
WORKER = "![w](http://127.0.0.1:9/w.png)"
HOST = "[h](http://evil.example/h) http://evil.example/bare"
QUEUE = "www.evil.example"  # a valid name that GitHub-flavoured Markdown links bare
OTHER = "x._em_.y"  # a valid name that CommonMark turns into emphasis
TOPIC = "www.evil.topic"
SCHEDULE = "www.evil.schedule"

_MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_BARE_URL = re.compile(r"(https?://|www(?=\.))[-.\w]+", re.IGNORECASE | re.ASCII)
_BARE_EMAIL = re.compile(r"[-.\w+]+@[-\w]+(?:\.[-\w]+)+", re.ASCII)
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)(?:\\\\)*\$")
#: Elements whose body Streamlit renders as Markdown.
_MARKDOWN_BODIES = {"markdown", "caption", "title", "header", "subheader", "error", "warning",
                    "info", "success", "toast", "metric"}


def _boundary(text: str, index: int) -> bool:
    """Where Streamlit's autolink-literal rule may start a link (remark-gfm)."""
    if index == 0:
        return True
    before = text[index - 1]
    return before.isspace() or unicodedata.category(before)[0] in "PS"


def _tokens(tokens: list[Token]) -> Iterator[Token]:
    for token in tokens:
        yield token
        yield from _tokens(token.children or [])


def hazards(source: str) -> list[str]:
    """What ``source`` would render besides text and the pages' own headings, bold and code
    spans."""
    found = []
    for token in _tokens(_MARKDOWN.parse(source)):
        if token.type in ("image", "link_open"):
            found.append(f"{token.type} to {token.attrGet('src') or token.attrGet('href')}")
        elif token.type in ("html_inline", "html_block"):
            found.append(f"raw HTML {token.content!r}")
        elif token.type in ("em_open", "s_open", "table_open", "bullet_list_open",
                            "ordered_list_open", "blockquote_open"):
            found.append(token.type)
        elif token.type == "text":
            found += [f"bare link {m.group()!r}" for m in _BARE_URL.finditer(token.content)
                      if _boundary(token.content, m.start())]
            found += [f"bare e-mail link {m.group()!r}"
                      for m in _BARE_EMAIL.finditer(token.content)]
    if _UNESCAPED_DOLLAR.search(source):
        found.append("a math delimiter")
    return found


def markdown_sources(app: AppTest) -> Iterator[tuple[str, str]]:
    """Every string on the page that Streamlit renders as Markdown, with where it is."""
    for node in [*app.main, *app.sidebar]:
        kind = node.type
        if kind in _MARKDOWN_BODIES:
            yield f"{kind} body", str(node.value)
        for field in ("label", "help"):
            value = getattr(node, field, None)
            if isinstance(value, str) and value:
                yield f"{kind} {field}", value
        if kind == "radio":
            yield from (("radio option", str(o)) for o in node.options)  # type: ignore[attr-defined]
        if kind == "progress":
            yield "progress text", str(node.text)  # type: ignore[attr-defined]
        if kind == "table":
            frame = node.value  # type: ignore[attr-defined]
            yield from (("table cell", str(v)) for v in frame.to_numpy().ravel())


def assert_shown_as_text(app: AppTest) -> list[str]:
    """No string the page renders as Markdown makes an image, a link or formatting; returns
    what the operator reads of them."""
    sources = list(markdown_sources(app))
    assert sources, "the page rendered nothing"
    bad = {f"{where}: {source!r}": found for where, source in sources
           if (found := hazards(source))}
    assert not bad, bad
    return [plain(source) for _, source in sources]


def literal_texts(app: AppTest) -> list[str]:
    """What the page shows without Markdown: st.text, st.code and st.json bodies."""
    return [str(e.value) for kind in ("text", "code", "json") for e in app.get(kind)]


def admin_page(app: AppTest, name: str) -> AppTest:
    app.radio(key="admin_page").set_value(name)
    return run(app)


def test_a_dead_letters_reason_error_and_payload_are_shown_as_text(
    open_console: Console, db: Queue
) -> None:
    db.create_queue("webhooks", max_attempts=1)
    job = db.enqueue("webhooks", {"md": IMAGE, "html": "<img src=http://127.0.0.1:9/p.png>"},
                     headers={"h": IMAGE})
    claimed = db.dequeue("webhooks")
    assert claimed is not None and claimed.id == job.id
    db.move_to_dead_letter_queue(claimed, REASON, error=ERROR)
    app = admin_page(open_console("admin_console.py"), "Dead letters")
    assert app.selectbox(key="dead_pick").value == job.id  # inspected
    assert_shown_as_text(app)
    literal = literal_texts(app)
    assert any(REASON in text for text in literal)  # verbatim, line break included
    assert ERROR in literal and any(IMAGE in text for text in literal)  # error, payload
    assert REASON in set(app.dataframe[0].value["reason"])


def test_a_dedup_key_payload_and_headers_are_shown_as_text(open_console: Console,
                                                          db: Queue) -> None:
    job = db.enqueue("emails", {"md": IMAGE}, headers={"h": WORKER}, dedup_key=DEDUP_KEY)
    failed = db.dequeue("emails")
    assert failed is not None
    db.nack(failed, error=ERROR, delay=0)
    app = open_console("ops_console.py")
    app.number_input(key="detail_id").set_value(job.id)
    run(app)
    assert_shown_as_text(app)
    literal = literal_texts(app)
    assert any(DEDUP_KEY in text for text in literal)  # verbatim
    assert ERROR in literal and any(IMAGE in text for text in literal)
    assert ERROR in set(app.dataframe[0].value["last error"])


def test_names_are_shown_as_text_on_every_page(open_console: Console, db: Queue) -> None:
    db.create_queue(QUEUE)
    db.create_queue(OTHER)
    db.enqueue(QUEUE, {"n": 1})
    db.subscribe(TOPIC, queue=QUEUE)
    db.subscribe(TOPIC, queue=OTHER)
    db.schedule(QUEUE, {"md": IMAGE}, every=3600, name=SCHEDULE)
    db.register_worker(WORKER, kind="consumer", queues=[QUEUE], host=HOST)
    db.heartbeat_worker(WORKER, processed=1, failed=1)

    app = open_console("admin_console.py")
    shown = assert_shown_as_text(app)  # metrics
    assert f"Queues: {QUEUE} (1 ready), {OTHER} (0 ready)" in shown
    assert WORKER in set(app.dataframe[2].value["id"])
    app.selectbox(key="metrics_focus").set_value(QUEUE)
    assert f"#### Throughput, last 1h 00m ({QUEUE})" in assert_shown_as_text(run(app))
    app = admin_page(app, "Queues")
    app.selectbox(key="manage_queue").set_value(QUEUE)
    click(app, "Pause")
    assert messages(app, "success") == [
        f"Paused queue '{QUEUE}': consumers claim nothing from it."]
    assert f"Type '{QUEUE}' to confirm" in assert_shown_as_text(app)
    click(app, "Resume")
    assert_shown_as_text(admin_page(app, "Workflows"))

    app = open_console("ops_console.py")  # every tab renders in one run
    shown = assert_shown_as_text(app)
    assert f"Subscribers: **{TOPIC}** → {QUEUE}, {OTHER}" in shown
    app.selectbox(key="enq_queue").set_value(QUEUE)
    click(app, "Enqueue")
    [said] = messages(app, "success")
    assert said.startswith("Enqueued job") and said.endswith(f"on queue '{QUEUE}'.")
    assert_shown_as_text(app)
    app.selectbox(key="claim_queue").set_value(QUEUE)
    click(app, "Claim next job")
    assert messages(app, "success")[0].startswith("Claimed job")
    claimed = app.session_state["pq_claimed"]
    assert f"**Job {claimed.id}** from queue {QUEUE}, attempt 1 of 5, priority 0" in (
        assert_shown_as_text(app))
    app.number_input(key="detail_id").set_value(claimed.id)
    run(app)
    assert {m.label: plain(m.value) for m in app.metric}["Queue"] == QUEUE
    assert_shown_as_text(app)


def test_typed_input_quoted_in_messages_is_shown_as_text(open_console: Console,
                                                         db: Queue) -> None:
    app = open_console("ops_console.py")
    app.text_input(key="enq_new_queue").set_value(IMAGE)
    click(app, "Enqueue")
    [error] = messages(app, "error")
    assert f"invalid queue name {IMAGE!r}" in error
    assert_shown_as_text(app)

    app = admin_page(open_console("admin_console.py"), "Workflows")
    app.text_input(key="sub_topic").set_value(f"{IMAGE} www.evil.example a@evil.example")
    app.text_input(key="sub_queue").set_value("billing")
    click(app, "Subscribe")
    [error] = messages(app, "error")
    assert IMAGE in error
    assert_shown_as_text(app)


def test_a_running_jobs_worker_progress_and_cancel_reason_are_shown_as_text(
    open_console: Console, db: Queue
) -> None:
    job = db.enqueue("reports", {"n": 1})
    claimed = db.dequeue("reports", worker=WORKER)
    assert claimed is not None
    db.set_progress(claimed, 0.5, REASON)
    db.cancel(job.id, reason=REASON)
    app = open_console("ops_console.py")
    app.number_input(key="detail_id").set_value(job.id)
    shown = assert_shown_as_text(run(app))
    assert f"50%: {REASON}".replace("\n", " ") in shown  # the progress bar's text
    assert f"Cancellation requested: {REASON}" in literal_texts(app)
    frames = [f.value for f in app.dataframe]
    assert any(WORKER in set(f["worker"]) for f in frames if "timeout" in f.columns)
    assert any(WORKER in set(f["worker"]) for f in frames if "event" in f.columns)
