"""The producer's file source: where it stands in a file, and that it is still that file.

A file is published from the stored offset on. The offset is stored with the file's inode and
a fingerprint of the bytes it follows (the file's first bytes and those just before the
offset), so a file replaced by another, or truncated in place and written again (``logrotate
copytruncate``), is read from its beginning. With ``follow`` the file is watched for new
lines and for being rotated away; when another producer advanced the stored offset, this one
goes on from there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from typing import BinaryIO

from .errors import InvalidArgument
from .publish_loop import CHUNK, PublishLoop, _batches, _OffsetMoved, _split

# The producer's records keep the logger name they had in one module (``publisher``).
logger = logging.getLogger("persistent_queue.publisher")

#: How many of the file's first bytes, and of the bytes just before the offset, the stored
#: fingerprint covers.
FINGERPRINT_BYTES = 256


class FileSource(PublishLoop):
    """Publishing a file's lines from the stored offset on, following it if asked."""

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
