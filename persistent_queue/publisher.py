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

import hashlib
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, NamedTuple

from . import config, validation
from .errors import InvalidArgument, InvalidInput, QueueError, QueueFull
from .models import JSON
from .queue import Queue

logger = logging.getLogger(__name__)

Format = Literal["auto", "json", "text"]
CHUNK = 1024 * 1024
#: How many of the file's first bytes, and of the bytes just before the offset, the stored
#: fingerprint covers.
FINGERPRINT_BYTES = 256
#: Seconds between two looks for room in a full bounded queue.
ROOM_POLL = 0.2
_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*([smh]))?\s*")


def parse_rate(text: str) -> float:
    """``"50/s"``, ``"3000/m"``, ``"10/h"`` or ``"50"`` (per second) as jobs per second."""
    match = _RATE.fullmatch(text)
    if not match or float(match.group(1)) <= 0:
        raise InvalidArgument(f"rate must look like 50/s, 3000/m or 10/h, not {text!r}")
    per = {"s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return float(match.group(1)) / per


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


class Publisher:
    """Publishes to one queue; ``stop()`` (e.g. from a signal) ends any loop after its batch."""

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

    def __enter__(self) -> Publisher:
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
            del rest[:size]
            if whole:
                if stalled:  # said once per batch, not once per line that found room
                    logger.info("queue %s had room for the waiting lines after %.1f s",
                                self.options.queue, time.monotonic() - stalled,
                                extra={"queue": self.options.queue})
                return True
            size = len(rest)

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

    def publish_file(self, path: str | os.PathLike[str], *, follow: bool = False,
                     key: str | None = None, poll: float = 0.2) -> int:
        """Publish a file's lines from the stored offset on; with ``follow``, keep watching."""
        path = os.fspath(path)
        self._source = path
        # The path as given (not resolved): moving the whole project keeps its offsets. The
        # stored inode and fingerprint tell a different file under the same name apart.
        key = key or f"producer.offset:{self.options.queue}:{os.path.normpath(path)}"
        while not self._stop.is_set():
            try:
                handle = _open_regular(path)
            except FileNotFoundError:
                if not follow:
                    raise InvalidArgument(f"no such input file: {path}") from None
                self._stop.wait(poll)
                continue
            replaced = self._drain_file(handle, key, follow=follow, poll=poll)
            if not replaced:
                break
        return self.published

    def _resume(self, fd: int, key: str, inode: int, path: str) -> _Cursor:
        """Where to start in the open file: after the stored offset if it belongs to this
        file (same inode, long enough, same fingerprint), else at its beginning."""
        start = _Cursor(key, inode)
        stored = self._stored = self.q.get_value(key)
        if stored is None:
            return start
        saved = json.loads(stored)
        offset = int(saved["offset"])
        if saved.get("inode") != inode or offset > os.fstat(fd).st_size:
            logger.warning("input file was replaced or truncated: starting from its beginning",
                           extra={"path": path})
            return start
        span = min(offset, FINGERPRINT_BYTES)
        head, before = os.pread(fd, span, 0), os.pread(fd, span, offset - span)
        fingerprint = saved.get("fingerprint")  # absent in offsets stored by older versions
        if len(head) != span or len(before) != span or (
                fingerprint is not None and fingerprint != _fingerprint(head, before)):
            logger.warning("input file was rewritten since its offset was stored (the bytes "
                           "before byte %d differ): starting from its beginning", offset,
                           extra={"path": path, "offset": offset})
            return start
        line = saved.get("line")
        number = int(line) if line is not None else _count_lines(fd, offset)
        return _Cursor(key, inode, offset, number, head, before)

    def _drain_file(self, handle: BinaryIO, key: str, *, follow: bool, poll: float) -> bool:
        """Publish from ``handle`` until it ends (or is replaced, when following)."""
        with handle:
            fd = handle.fileno()
            inode = os.fstat(fd).st_ino
            cursor = self._resume(fd, key, inode, handle.name)
            logger.info("publishing %s from byte %d", handle.name, cursor.offset,
                        extra={"path": handle.name, "offset": cursor.offset, "follow": follow})
            while not self._stop.is_set():
                chunk = os.pread(fd, CHUNK, cursor.position)
                if chunk and not cursor.matches(fd):
                    # Truncated in place and written again: what was read is gone.
                    logger.warning("input file was truncated and rewritten: starting from its "
                                   "beginning", extra={"path": handle.name})
                    cursor = _Cursor(key, inode)
                    continue
                try:
                    if chunk:
                        cursor.feed(chunk)
                        if not self._publish_lines(cursor, cursor.complete_lines()):
                            return False
                        continue
                    if not follow:
                        if cursor.pending:
                            self._publish_lines(cursor, [cursor.pending])
                        return False
                except _OffsetMoved:
                    moved = self._taken_over(fd, key, inode, handle.name, cursor)
                    if moved is None:
                        return True  # the others moved on to the file now at the path
                    cursor = moved
                    continue
                self._beat()
                if _replaced(handle.name, inode, cursor.position):
                    if os.fstat(fd).st_size > cursor.position:
                        continue  # written before it was renamed away: read that first
                    return True
                self._stop.wait(poll)
        return False

    def _taken_over(self, fd: int, key: str, inode: int, path: str,
                    cursor: _Cursor) -> _Cursor | None:
        """Where to go on after another producer advanced the stored offset: from the offset
        it stored, or None to leave this file when it stored one for the file that replaced
        this one at ``path`` (it drained this one first)."""
        self.offset_conflicts += 1
        stored = self.q.get_value(key)
        log = logger.warning if self.offset_conflicts == 1 else logger.debug
        log("another producer advanced the offset in %s: continuing from where it stopped "
            "(said once; each line is published once)", path,
            extra={"path": path, "key": key})
        if stored is not None and json.loads(stored).get("inode") != inode:
            try:
                at_path = os.stat(path).st_ino
            except FileNotFoundError:
                at_path = None
            if at_path != inode:
                return None
            self._stored = stored  # the other producer is on a file replaced by this one
            return cursor
        return self._resume(fd, key, inode, path)

    def _publish_lines(self, cursor: _Cursor, raw_lines: list[bytes]) -> bool:
        """Publish lines read at the cursor, batch by batch; False when stopped."""
        offset, number = cursor.offset, cursor.line
        for group in _batches(raw_lines, self.options.batch):
            lines = self._lines(group, number, offset)
            offset += sum(len(raw) for raw in group)
            number += len(group)
            if not self._publish(lines, offset, number, cursor.record) or self._stop.is_set():
                return False
        cursor.consume(offset - cursor.offset, number - cursor.line)
        return True

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


class _Cursor:
    """Where publishing stands in one open file, and the bytes that prove it is still there.

    ``offset`` is the end of the last line handed out (line number ``line``). Kept in memory:
    the file's first bytes (``head``, up to ``FINGERPRINT_BYTES``) and a buffer holding the
    ``FINGERPRINT_BYTES`` bytes before ``offset`` followed by the bytes read after it that do
    not make a complete line yet.
    """

    def __init__(self, key: str, inode: int, offset: int = 0, line: int = 0,
                 head: bytes = b"", before: bytes = b"") -> None:
        self.key, self.inode = key, inode
        self.offset, self.line = offset, line
        self.head = head
        self._buffer = before
        self._kept = len(before)

    @property
    def pending(self) -> bytes:
        """Bytes read after ``offset``."""
        return self._buffer[self._kept:]

    @property
    def position(self) -> int:
        """Where the next read starts."""
        return self.offset + len(self._buffer) - self._kept

    def feed(self, chunk: bytes) -> None:
        """Take the bytes read at ``position``."""
        if len(self.head) < FINGERPRINT_BYTES:
            self.head += chunk[:FINGERPRINT_BYTES - len(self.head)]
        self._buffer += chunk

    def complete_lines(self) -> list[bytes]:
        """The complete lines read after ``offset``."""
        return _split(self.pending)[0]

    def consume(self, size: int, lines: int) -> None:
        """Move ``offset`` past ``size`` bytes (``lines`` lines) that were published."""
        self.offset += size
        self.line += lines
        start = self._kept + size
        keep = min(FINGERPRINT_BYTES, start)
        self._buffer = self._buffer[start - keep:]
        self._kept = keep

    def record(self, end: int, line: int) -> tuple[str, str]:
        """The key and value to store for offset ``end`` (between offset and position)."""
        at = self._kept + end - self.offset
        tail = self._buffer[max(0, at - FINGERPRINT_BYTES):at]
        head = self.head[:min(end, FINGERPRINT_BYTES)]
        return self.key, json.dumps({"offset": end, "inode": self.inode, "line": line,
                                     "fingerprint": _fingerprint(head, tail)})

    def matches(self, fd: int) -> bool:
        """Whether the file still holds, before ``position``, the bytes read there."""
        tail = self._buffer[-FINGERPRINT_BYTES:] if self._buffer else b""
        return (os.pread(fd, len(self.head), 0) == self.head
                and os.pread(fd, len(tail), self.position - len(tail)) == tail)


def _fingerprint(head: bytes, tail: bytes) -> str:
    """A digest of the file's first bytes and of the bytes just before an offset."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(len(head).to_bytes(4, "big"))
    digest.update(head)
    digest.update(tail)
    return digest.hexdigest()


def _count_lines(fd: int, end: int) -> int:
    """Newlines in the file before byte ``end`` (an offset stored without its line number)."""
    count = position = 0
    while position < end:
        chunk = os.pread(fd, min(CHUNK, end - position), position)
        if not chunk:
            break
        count += chunk.count(b"\n")
        position += len(chunk)
    return count


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (with their newline) and the unfinished rest."""
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(keepends=True), data[end:]


def _batches(lines: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(lines), size):
        yield lines[start:start + size]


def _open_regular(path: str) -> BinaryIO:
    """``path`` opened for reading; ``InvalidArgument`` if it cannot be read, or is a
    directory, a pipe or a socket (no offsets there: a stream is read with ``--input -``)."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a pipe or socket"
            raise InvalidArgument(f"input {path} is {kind}, not a file (to read a stream, give "
                                  "--input - and send it to stdin)")
        return open(path, "rb")  # noqa: SIM115 - closed by _drain_file
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InvalidArgument(f"cannot read input file {path}: {exc.strerror}") from None


def _replaced(path: str, inode: int, position: int) -> bool:
    """The file at ``path`` is no longer the one open, or it was truncated below us."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False  # moved away and not yet recreated: keep waiting
    return found.st_ino != inode or found.st_size < position
