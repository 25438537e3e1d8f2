"""The producer's publishing loop: lines become jobs, committed with their offset.

:class:`PublishLoop` turns raw lines into payloads (``parse_line``), publishes them in
batches, each in one transaction with the stored offset after its last line (stored only over
the record this producer read or last wrote), halves a batch a bounded queue has no room for
and waits for room, and sets aside a line the queue refuses. Where lines come from (a file,
stdin, a synthetic load) is up to :class:`~persistent_queue.publisher.Publisher`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Self

from . import config, validation
from .errors import InvalidInput, QueueError, QueueFull
from .models import JSON
from .queue import Queue

# The producer's records keep the logger name they had in one module (``publisher``).
logger = logging.getLogger("persistent_queue.publisher")

Format = Literal["auto", "json", "text"]
CHUNK = 1024 * 1024
#: Seconds between two looks for room in a full bounded queue.
ROOM_POLL = 0.2


def parse_line(line: str, fmt: Format) -> JSON:
    """A line's payload: JSON (``json``), the text itself (``text``) or JSON-if-valid (``auto``).

    JSON that Python cannot read (an integer of thousands of digits, nesting deeper than the
    recursion limit) counts as invalid: ``InvalidInput`` with ``json``, the text with ``auto``.
    """
    if fmt == "text":
        return line
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        if fmt == "json":
            raise InvalidInput(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        return line
    except (ValueError, RecursionError) as exc:
        if fmt == "json":
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise InvalidInput(f"not readable JSON ({reason})") from None
        return line


@dataclass(frozen=True, slots=True)
class PublishOptions:
    """Where and how lines become jobs."""

    queue: str
    fmt: Format = "auto"
    batch: int = 500
    priority: int = 0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        """``InvalidArgument`` for a priority or max_attempts that every job would be refused
        for (rather than skipping every line)."""
        validation.integer(self.priority, name="priority", minimum=config.PRIORITY_MIN,
                           maximum=config.PRIORITY_MAX)
        if self.max_attempts is not None:
            validation.integer(self.max_attempts, name="max_attempts", minimum=1,
                               maximum=config.MAX_ATTEMPTS_LIMIT)


class _Line(NamedTuple):
    """One line to publish: its number in the input, the offset after it, its payload."""

    number: int
    end: int
    payload: JSON


#: The stored offset record for a commit that ends at byte ``end`` after line ``number``.
_Mark = Callable[[int, int], tuple[str, str]]


class _OffsetMoved(Exception):
    """Another producer advanced the stored offset: this commit was rolled back."""


class PublishLoop:
    """The producer's state and publishing loop; ``stop()`` (e.g. from a signal) ends any
    loop after its batch."""

    def __init__(self, q: Queue, options: PublishOptions, *, worker_id: str | None = None,
                 heartbeat_interval: float = 5.0) -> None:
        self.q = q
        self.options = options
        self.worker_id = worker_id
        self.heartbeat_interval = heartbeat_interval
        self.published = 0
        self.skipped = 0
        self._stop = threading.Event()
        self._unreported = 0
        self._next_beat = time.monotonic() + heartbeat_interval
        self._source = "input"
        #: The stored offset record as this producer read or last wrote it (None: none yet).
        self._stored: str | None = None
        #: Commits rolled back because another producer advanced the offset first.
        self.offset_conflicts = 0

    def stop(self, signum: int | None = None) -> None:
        """Finish the current batch (or stop waiting for room) and return."""
        self._stop.set()

    # -- registry ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        if self.worker_id:
            self.q.register_worker(self.worker_id, kind="producer", queues=[self.options.queue])
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.worker_id:
            try:
                self._beat(force=True)
                self.q.stop_worker(self.worker_id)
            except QueueError as exc:
                logger.error("could not record the producer's exit: %s", exc)

    def _beat(self, force: bool = False) -> None:
        if not self.worker_id or (not force and time.monotonic() < self._next_beat):
            return
        self._next_beat = time.monotonic() + self.heartbeat_interval
        self.q.heartbeat_worker(self.worker_id, processed=self._unreported)
        self._unreported = 0

    # -- publishing -------------------------------------------------------------------------

    def _skip(self, number: int, reason: str, text: str | None = None) -> None:
        self.skipped += 1
        extra: dict[str, Any] = {"source": self._source, "line_number": number}
        if text is not None:
            extra["line"] = text[:200]
        logger.error("skipped line %d of %s: %s", number, self._source, reason, extra=extra)

    def _lines(self, raw_lines: list[bytes], number: int, offset: int) -> list[_Line]:
        """The payloads of ``raw_lines`` (the first is line ``number + 1``, starting at byte
        ``offset``); blank lines are left out, lines that do not parse are logged and skipped."""
        lines = []
        for raw in raw_lines:
            number += 1
            offset += len(raw)
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not text.strip():
                continue
            try:
                lines.append(_Line(number, offset, parse_line(text, self.options.fmt)))
            except InvalidInput as exc:
                self._skip(number, str(exc), text)
        return lines

    def _transaction(self, payloads: list[JSON], offset: tuple[str, str] | None) -> None:
        """Enqueue ``payloads`` and store ``offset`` in one transaction: both or neither.

        The offset is stored only over the record this producer read or last wrote;
        ``_OffsetMoved`` (nothing stored) if another producer changed it since. The check
        comes first: on PostgreSQL a second producer waits there, before inserting anything.
        """
        opts = self.options
        with self.q.atomic():
            if offset is not None and not self.q.compare_and_set_value(
                    offset[0], self._stored, offset[1]):
                raise _OffsetMoved(offset[0])
            if payloads:
                self.q.enqueue_many(opts.queue, payloads, priority=opts.priority,
                                    max_attempts=opts.max_attempts)
        if offset is not None:
            self._stored = offset[1]
        self.published += len(payloads)
        self._unreported += len(payloads)
        self._beat()

    def _commit(self, rest: list[_Line], end: int, end_line: int, mark: _Mark | None) -> bool:
        """Publish ``rest`` and store the offset ``end``, after line ``end_line`` (``mark``
        makes the record); what is committed is removed from ``rest``. False when stopped
        before all of it was.

        A bounded queue without room for all of ``rest`` gets the longest part that fits,
        stored with the offset of its own last line, and the rest waits for room. The queue
        refusing a payload raises ``InvalidInput`` (nothing of that transaction is stored).
        """
        size = len(rest)
        stalled = 0.0
        while True:
            part = rest[:size]
            whole = size == len(rest)
            offset = None
            if mark is not None:
                offset = mark(end, end_line) if whole else mark(part[-1].end, part[-1].number)
            started = time.monotonic()
            try:
                self._transaction([line.payload for line in part], offset)
            except QueueFull:
                if size > 1:
                    size //= 2  # publish what fits
                    continue
                if not stalled:
                    stalled = time.monotonic()
                    logger.warning("queue %s is full: %d line(s) of %s wait for room",
                                   self.options.queue, len(rest), self._source,
                                   extra={"queue": self.options.queue, "waiting": len(rest)})
                self._beat()
                if self._stop.wait(ROOM_POLL):
                    logger.info("stopped while waiting for room in queue %s",
                                self.options.queue, extra={"queue": self.options.queue})
                    return False
                continue  # one line first: the cheapest look for room
            if part:
                self._log_batch(part, None if mark is None else end if whole else part[-1].end,
                                time.monotonic() - started)
            del rest[:size]
            if whole:
                if stalled:  # said once per batch, not once per line that found room
                    logger.info("queue %s had room for the waiting lines after %.1f s",
                                self.options.queue, time.monotonic() - stalled,
                                extra={"queue": self.options.queue})
                return True
            size = len(rest)

    def _log_batch(self, part: list[_Line], offset: int | None, seconds: float) -> None:
        """One INFO line per committed batch: queue, lines, first and last line number, the
        stored byte offset (from a file) and how long the commit took."""
        if not logger.isEnabledFor(logging.INFO):
            return
        extra: dict[str, Any] = {
            "queue": self.options.queue, "source": self._source, "lines": len(part),
            "first_line": part[0].number, "last_line": part[-1].number,
            "duration_ms": round(seconds * 1000, 2)}
        if offset is not None:
            extra["offset"] = offset
        logger.info("published %d line(s) of %s to %s", len(part), self._source,
                    self.options.queue, extra=extra)

    def _publish(self, lines: list[_Line], end: int, end_line: int,
                 mark: _Mark | None) -> bool:
        """Publish a batch ending at byte ``end`` after line ``end_line``; a line the queue
        refuses is logged and skipped. Every commit stores the offset of its last line (with
        ``mark``). False when stopped."""
        rest = list(lines)
        try:
            return self._commit(rest, end, end_line, mark)
        except InvalidInput:
            pass  # one line or more the queue refuses: set them aside, publish the others
        rest = [line for line in rest if self._storable(line)]
        try:
            return self._commit(rest, end, end_line, mark)
        except InvalidInput:
            pass  # refused together though each passed alone: one commit per line
        for line in rest:
            try:
                if not self._commit([line], line.end, line.number, mark):
                    return False
            except InvalidInput as exc:
                self._skip(line.number, f"the queue refused it: {exc}")
        return self._commit([], end, end_line, mark)

    def _storable(self, line: _Line) -> bool:
        try:
            validation.payload(line.payload, max_bytes=self.q.max_payload_bytes)
        except InvalidInput as exc:
            self._skip(line.number, f"the queue refuses it: {exc}")
            return False
        return True


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (with their newline) and the unfinished rest."""
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(keepends=True), data[end:]


def _batches(lines: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(lines), size):
        yield lines[start:start + size]
