"""The consoles show a task job's name, arguments and result, as literal text."""

from __future__ import annotations

from collections.abc import Callable

from console_helpers import run
from streamlit.testing.v1 import AppTest
from test_console_injection import IMAGE, assert_shown_as_text, literal_texts

from persistent_queue import Queue

Console = Callable[[str], AppTest]


def declare(db: Queue) -> None:
    @db.task(queue="emails", name="send_email", max_attempts=1)
    def send_email(to: str, subject: str = "") -> dict[str, str]:
        return {"sent": to}


def test_job_detail_shows_the_task_its_arguments_and_its_result(open_console: Console,
                                                                db: Queue) -> None:
    declare(db)
    handle = db.tasks.get("send_email").delay("a@b.c", subject="hi")
    claimed = db.dequeue("emails")
    assert claimed is not None
    db.ack(claimed, result={"sent": "a@b.c", "note": IMAGE})
    app = open_console("ops_console.py")
    app.number_input(key="detail_id").set_value(handle.id)
    run(app)
    assert_shown_as_text(app)
    literal = literal_texts(app)
    assert "send_email" in literal
    assert '[\n  "a@b.c"\n]' in literal
    assert '{\n  "subject": "hi"\n}' in literal
    assert '{\n  "sent": "a@b.c",\n  "note": "' + IMAGE + '"\n}' in literal


def test_a_string_result_is_shown_as_the_string_not_parsed(open_console: Console,
                                                           db: Queue) -> None:
    declare(db)
    handle = db.tasks.get("send_email").delay("a@b.c")
    claimed = db.dequeue("emails")
    assert claimed is not None
    db.ack(claimed, result='{"looks": "like json"} ' + IMAGE)
    app = open_console("ops_console.py")
    app.number_input(key="detail_id").set_value(handle.id)
    run(app)
    assert_shown_as_text(app)
    assert '"{\\"looks\\": \\"like json\\"} ' + IMAGE + '"' in literal_texts(app)


def test_a_dead_lettered_task_shows_its_name_in_the_admin_console(open_console: Console,
                                                                  db: Queue) -> None:
    declare(db)
    db.tasks.get("send_email").delay(IMAGE)
    claimed = db.dequeue("emails")
    assert claimed is not None
    db.nack(claimed, error="SMTP said no")
    app = open_console("admin_console.py")
    app.radio(key="admin_page").set_value("Dead letters")
    run(app)
    assert_shown_as_text(app)
    assert "Task: send_email (its arguments are in the payload)" in literal_texts(app)
