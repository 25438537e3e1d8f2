"""The producer: publishes lines of a file or stdin, or a synthetic load, as jobs.

From a file, every commit that publishes lines stores, in the same transaction
(``Queue.atomic``), the file offset after its last line, so a crash at any moment neither
loses a line nor publishes one twice: after a restart the producer continues exactly after the
last line whose job was committed. Each such commit stores the offset only if it is still the
one this producer read or last wrote (``Queue.compare_and_set_value``): when another producer
on the same file and queue advanced it (one started by hand beside the supervised one), the
commit is rolled back, nothing of it is published, and this producer goes on from the stored
offset. Producers on one file take turns and publish each line once. The stored offset
carries the file's inode and a fingerprint of the bytes it follows (the file's first bytes and
those just before the offset): a file replaced by another, or truncated in place and written
again (``logrotate copytruncate``), is read from its beginning, even when it is already longer
than the offset. With ``follow`` it keeps watching the file for new lines. Only complete lines
(ending in a newline) are published while following; a last line without one is published
when the input ends.

Input never stops the producer: a line that does not parse (``--format json``) or that the
queue refuses (NaN, an integer beyond 64 bits, a payload over the size limit) is logged with
its line number and skipped. On a bounded queue without room for a whole batch, what fits is
published and the rest waits for room (back-pressure), which the log says.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, BinaryIO

from .errors import InvalidArgument
from .file_source import FINGERPRINT_BYTES, FileSource
from .publish_loop import (
    CHUNK,
    ROOM_POLL,
    Format,
    PublishLoop,
    PublishOptions,
    _batches,
    _Line,
    parse_line,
)
from .publish_loop import _split as _split  # re-exported: where it has always been

__all__ = ["CHUNK", "FINGERPRINT_BYTES", "ROOM_POLL", "Format", "PublishOptions", "Publisher",
           "parse_line", "parse_rate"]

_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*([smh]))?\s*")


def parse_rate(text: str) -> float:
    """``"50/s"``, ``"3000/m"``, ``"10/h"`` or ``"50"`` (per second) as jobs per second."""
    match = _RATE.fullmatch(text)
    if not match or float(match.group(1)) <= 0:
        raise InvalidArgument(f"rate must look like 50/s, 3000/m or 10/h, not {text!r}")
    per = {"s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return float(match.group(1)) / per


class Publisher(FileSource, PublishLoop):
    """Publishes to one queue from a file (:class:`~persistent_queue.file_source.FileSource`),
    a stream or a synthetic load; ``stop()`` (e.g. from a signal) ends any loop after its
    batch."""

    def publish_stream(self, stream: BinaryIO) -> int:
        """Publish every line of a stream (stdin) until it ends; no offset is kept."""
        self._source = "stdin"
        fd = stream.fileno()
        pending = b""
        number = 0
        while not self._stop.is_set():
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            raw_lines, pending = _split(pending + chunk)
            for group in _batches(raw_lines, self.options.batch):
                if not self._publish(self._lines(group, number, 0), 0, 0, None):
                    return self.published
                number += len(group)
        if pending and not self._stop.is_set():
            self._publish(self._lines([pending], number, 0), 0, 0, None)
        return self.published

    def publish_synthetic(self, rate: float, count: int | None,
                          template: dict[str, Any] | None = None) -> int:
        """Publish ``count`` jobs (forever if None) at ``rate`` per second."""
        self._source = "synthetic load"
        started = time.monotonic()
        sent = 0
        while not self._stop.is_set() and (count is None or sent < count):
            due = int((time.monotonic() - started) * rate) + 1 - sent
            if count is not None:
                due = min(due, count - sent)
            due = min(due, self.options.batch)
            if due <= 0:
                self._beat()
                self._stop.wait(min(0.1, 1 / rate))
                continue
            now = time.time()
            rest = [_Line(sent + i + 1, 0, {**(template or {}), "seq": sent + i, "sent_at": now})
                    for i in range(due)]
            done = self._commit(rest, 0, 0, None)
            sent += due - len(rest)
            if not done:
                break
        return self.published
