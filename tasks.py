"""The demo's own handlers: ``python consumer.py --queue emails --handler tasks:send_email``.

Application code lives in modules like this one; the consumer imports the handler by name.
"""

from __future__ import annotations

import logging
import re
import time

from persistent_queue import Job

logger = logging.getLogger("tasks")

_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def send_email(job: Job) -> None:
    """Pretend to send an email to ``payload`` (an address) or ``payload["to"]``.

    An invalid address raises ``ValueError``: the job is retried and then dead-lettered,
    which is what the operator consoles show.
    """
    payload = job.payload
    to = payload.get("to") if isinstance(payload, dict) else payload
    if not isinstance(to, str) or not _ADDRESS.fullmatch(to.strip()):
        raise ValueError(f"not an email address: {to!r}")
    time.sleep(0.05)  # the SMTP round trip
    logger.info("sent email to %s", to.strip(), extra={"job_id": job.id, "to": to.strip()})
