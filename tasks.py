"""The demo's own code: a raw-job handler and tasks declared with ``@q.task``.

The demo's consumers run both (``supervisor/supervisord.conf``)::

    python consumer.py --app tasks:q --queues emails,reports --handler tasks:send_email

A job that names a task (stored by ``resize.delay(...)`` or ``POST /tasks/tasks.resize``) runs
that task and its return value is stored as the job's result; any other job (the raw lines
``producer.py`` publishes to ``emails``) runs ``send_email``. ``emails`` is listed first, so
the consumers claim from it before ``reports``.

``q`` is the Queue of ``PQ_DB`` (``data/queue.db`` by default), so ``from tasks import
report; report.delay(...)`` stores jobs where the demo's consumers claim them.
"""

from __future__ import annotations

import logging
import os
import re
import time

from persistent_queue import Job, Queue, current_job

logger = logging.getLogger("tasks")

_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

q = Queue(os.environ.get("PQ_DB", "data/queue.db"))


def send_email(job: Job) -> None:
    """Pretend to send an email to ``payload`` (an address) or ``payload["to"]``.

    The handler of raw ``emails`` jobs. An invalid address raises ``ValueError``: the job is
    retried and then dead-lettered, which is what the operator consoles show.
    """
    payload = job.payload
    to = payload.get("to") if isinstance(payload, dict) else payload
    if not isinstance(to, str) or not _ADDRESS.fullmatch(to.strip()):
        raise ValueError(f"not an email address: {to!r}")
    time.sleep(0.05)  # the SMTP round trip
    logger.info("sent email to %s", to.strip(), extra={"job_id": job.id, "to": to.strip()})


@q.task(queue="reports", max_attempts=3)
def resize(image: str, width: int = 640) -> dict[str, object]:
    """Pretend to resize an image; the result says where the copy went."""
    if width <= 0:
        raise ValueError(f"width must be positive, not {width}")
    time.sleep(0.02)
    return {"image": image, "width": width, "thumbnail": f"{image}.{width}w"}


@q.task(queue="reports")
def report(title: str) -> dict[str, object]:
    """A fan-in: summarise the results of the jobs this one depends on.

    ``report.options(depends_on=[resize.delay("a.png"), resize.delay("b.png")]).delay("daily")``
    runs once both resizes are done, and reads what they returned.
    """
    parents = current_job().dependency_results()
    return {"title": title, "parts": len(parents),
            "thumbnails": [r["thumbnail"] for r in parents.values() if isinstance(r, dict)]}
