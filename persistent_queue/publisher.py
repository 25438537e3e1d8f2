"""The producer: publishes lines of a file or stdin, or a synthetic load, as jobs.

From a file, every batch of lines is enqueued in the same transaction that stores the file
offset after them (``Queue.atomic``), so a crash at any moment neither loses a line nor
publishes one twice: after a restart the producer continues exactly after the last line
whose job was committed. With ``follow`` it keeps watching the file for new lines (and starts
over when the file is truncated or replaced). Only complete lines (ending in a newline) are
published while following; a last line without one is published when the input ends.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from .errors import InvalidArgument, InvalidInput, QueueError, QueueFull
from .models import JSON
from .queue import Queue

logger = logging.getLogger(__name__)

Format = Literal["auto", "json", "text"]
CHUNK = 1024 * 1024
_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*([smh]))?\s*")


def parse_rate(text: str) -> float:
    """``"50/s"``, ``"3000/m"``, ``"10/h"`` or ``"50"`` (per second) as jobs per second."""
    match = _RATE.fullmatch(text)
    if not match or float(match.group(1)) <= 0:
        raise InvalidArgument(f"rate must look like 50/s, 3000/m or 10/h, not {text!r}")
    per = {"s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return float(match.group(1)) / per


def parse_line(line: str, fmt: Format) -> JSON:
    """A line's payload: JSON (``json``), the text itself (``text``) or JSON-if-valid (``auto``)."""
    if fmt == "text":
        return line
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        if fmt == "json":
            raise InvalidInput(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        return line


@dataclass(frozen=True, slots=True)
class PublishOptions:
    """Where and how lines become jobs."""

    queue: str
    fmt: Format = "auto"
    batch: int = 500
    priority: int = 0
    max_attempts: int | None = None


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

    def stop(self, signum: int | None = None) -> None:
        """Finish the current batch and return."""
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

    def _payloads(self, lines: list[bytes]) -> list[JSON]:
        payloads = []
        for raw in lines:
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not text.strip():
                continue
            try:
                payloads.append(parse_line(text, self.options.fmt))
            except InvalidInput as exc:
                self.skipped += 1
                logger.error("skipped a line: %s", exc, extra={"line": text[:200]})
        return payloads

    def _enqueue(self, payloads: list[JSON], offset: tuple[str, str] | None) -> None:
        """Enqueue (and store the offset) in one transaction; waits while the queue is full."""
        opts = self.options
        while True:
            try:
                with self.q.atomic():
                    if payloads:
                        self.q.enqueue_many(opts.queue, payloads, priority=opts.priority,
                                            max_attempts=opts.max_attempts)
                    if offset is not None:
                        self.q.set_value(*offset)
                break
            except QueueFull:
                if self._stop.wait(0.5):
                    raise
        self.published += len(payloads)
        self._unreported += len(payloads)
        self._beat()

    def _publish_lines(self, lines: list[bytes], offset: tuple[str, str] | None) -> None:
        payloads = self._payloads(lines)
        try:
            self._enqueue(payloads, offset)
        except InvalidInput:
            if len(payloads) <= 1:  # the one bad line: log it and move past it
                logger.error("skipped a job the queue refused", exc_info=True)
                self.skipped += len(payloads)
                self._enqueue([], offset)
                return
            for payload in payloads:  # find the bad one; offsets move only after the batch
                try:
                    self._enqueue([payload], None)
                except InvalidInput as exc:
                    self.skipped += 1
                    logger.error("skipped a job the queue refused: %s", exc)
            self._enqueue([], offset)

    def publish_stream(self, stream: BinaryIO) -> int:
        """Publish every line of a stream (stdin) until it ends; no offset is kept."""
        fd = stream.fileno()
        pending = b""
        while not self._stop.is_set():
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            lines, pending = _split(pending + chunk)
            for start in range(0, len(lines), self.options.batch):
                self._publish_lines(lines[start:start + self.options.batch], None)
        if pending and not self._stop.is_set():
            self._publish_lines([pending], None)
        return self.published

    def publish_file(self, path: str | os.PathLike[str], *, follow: bool = False,
                     key: str | None = None, poll: float = 0.2) -> int:
        """Publish a file's lines from the stored offset on; with ``follow``, keep watching."""
        path = os.fspath(path)
        # The path as given (not resolved): moving the whole project keeps its offsets. The
        # stored inode tells a different file under the same name apart.
        key = key or f"producer.offset:{self.options.queue}:{os.path.normpath(path)}"
        while not self._stop.is_set():
            try:
                handle = open(path, "rb")  # noqa: SIM115 - closed by _drain_file
            except FileNotFoundError:
                if not follow:
                    raise InvalidArgument(f"no such input file: {path}") from None
                self._stop.wait(poll)
                continue
            replaced = self._drain_file(handle, key, follow=follow, poll=poll)
            if not replaced:
                break
        return self.published

    def _start_offset(self, handle: BinaryIO, key: str) -> int:
        stat = os.fstat(handle.fileno())
        stored = self.q.get_value(key)
        if stored is None:
            return 0
        saved = json.loads(stored)
        if saved.get("inode") != stat.st_ino or saved["offset"] > stat.st_size:
            logger.warning("input file was replaced or truncated: starting from its beginning",
                           extra={"path": handle.name})
            return 0
        return int(saved["offset"])

    def _drain_file(self, handle: BinaryIO, key: str, *, follow: bool, poll: float) -> bool:
        """Publish from ``handle`` until it ends (or is replaced, when following)."""
        with handle:
            inode = os.fstat(handle.fileno()).st_ino
            offset = self._start_offset(handle, key)
            handle.seek(offset)
            logger.info("publishing %s from byte %d", handle.name, offset,
                        extra={"path": handle.name, "offset": offset, "follow": follow})
            pending = b""
            while not self._stop.is_set():
                chunk = handle.read(CHUNK)
                if chunk:
                    lines, pending = _split(pending + chunk)
                    for group in _batches(lines, self.options.batch):
                        offset += sum(len(line) for line in group)
                        self._publish_lines(group, (key, _offset_value(offset, inode)))
                        if self._stop.is_set():
                            return False
                    continue
                if not follow:
                    if pending:
                        offset += len(pending)
                        self._publish_lines([pending], (key, _offset_value(offset, inode)))
                    return False
                self._beat()
                if _replaced(handle.name, inode, offset + len(pending)):
                    return True
                handle.seek(offset + len(pending))
                self._stop.wait(poll)
        return False

    def publish_synthetic(self, rate: float, count: int | None,
                          template: dict[str, Any] | None = None) -> int:
        """Publish ``count`` jobs (forever if None) at ``rate`` per second."""
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
            payloads: list[JSON] = [{**(template or {}), "seq": sent + i, "sent_at": now}
                                    for i in range(due)]
            self._enqueue(payloads, None)
            sent += due
        return self.published


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (with their newline) and the unfinished rest."""
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(keepends=True), data[end:]


def _batches(lines: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(lines), size):
        yield lines[start:start + size]


def _offset_value(offset: int, inode: int) -> str:
    return json.dumps({"offset": offset, "inode": inode})


def _replaced(path: str, inode: int, position: int) -> bool:
    """The file at ``path`` is no longer the one open, or it was truncated below us."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return False  # moved away and not yet recreated: keep waiting
    return stat.st_ino != inode or stat.st_size < position
